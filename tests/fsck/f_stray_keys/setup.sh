# Blocks, an xattr and an orphan record of inodes that do not exist.
mkstore
tool populate
tool put B:99:0 41424344
tool put B:99:1 41
tool put X:99:user.x 76
tool put O:98
