# A byte flipped in an SSTable's first data block, found by -f.
mkstore
tool populate
tool flush
flip "$(newest sst)" 5
FSCK_OPT=-fy
