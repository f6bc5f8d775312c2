# /a moved into its own child /a/b: a loop cut off from the root.
mkstore
tool populate
a=$(ino /a) b=$(ino /a/b)
tool dirent "$b" loop "$a" 4
tool del D:1:a
