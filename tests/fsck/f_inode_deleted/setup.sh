# The record of /a/b/hello deleted: its entry dangles.
mkstore
tool populate
tool del "I:$(ino /a/b/hello)"
