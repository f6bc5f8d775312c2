# An entry whose file type disagrees with its inode (preen may fix it).
mkstore
tool populate
tool dirent 1 empty "$(ino /empty)" 4
FSCK_OPT=-pf
