# The superblock deleted: a new one is written above every inode.
mkstore
tool populate
tool del S
