# The next inode number below inodes in use, and a wrong inode count in a
# superblock that says it is exact: preen fixes both.
mkstore
tool populate
tool sb ino_limit 3
tool sb inode_count 42
FSCK_OPT=-pf
