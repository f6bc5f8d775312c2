# An SSTable the manifest names is gone.
mkstore
tool populate
tool flush
rm "$STORE/$(newest sst)"
