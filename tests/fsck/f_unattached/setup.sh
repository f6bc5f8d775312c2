# Inodes no entry names: an empty file is cleared, a file with data and a
# directory go to /lost+found (made for them).
mkstore
tool populate
e=$(ino /empty) h=$(ino /a/b/hello)
tool del D:1:empty
tool del "D:$(ino /a/b):hello"
tool del D:1:c
