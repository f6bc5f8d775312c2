# An entry naming an inode that never existed, and one in a directory that
# does not exist.
mkstore
tool populate
tool dirent 1 ghost 999
tool dirent 555 lost 4
