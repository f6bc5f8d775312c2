# A file's size and block count disagree with its blocks.
mkstore
tool populate
tool set "$(ino /a/big)" nblocks 1
tool set "$(ino /a/big)" size 100
tool put "B:$(ino /empty):3"
