# An SSTable no manifest names (a crash in a compaction leaves such): deleted.
mkstore
tool populate
tool flush
cp "$STORE/$(newest sst)" "$STORE/000099.sst"
