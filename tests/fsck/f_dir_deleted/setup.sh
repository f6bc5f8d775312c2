# The record of directory /a/b deleted: its entries dangle in nothing,
# /a/b/hello goes to /lost+found, /a/big loses the link /a/b/hard gave it.
mkstore
tool populate
tool del "I:$(ino /a/b)"
