# A byte flipped inside the first value record of the value log, after a
# flush put the pointers in a table: the key pointing there (block 0 of
# /a/big) has lost its value and is cleared (a hole); the second run notes
# the damaged record, which no key uses any more.
mkstore
tool populate
tool flush
flip "$(newest vlog)" 40
