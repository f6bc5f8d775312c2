# Wrong link counts on a file and a directory.
mkstore
tool populate
tool set "$(ino /a/big)" nlink 7
tool set "$(ino /a)" nlink 9
