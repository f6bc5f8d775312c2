# The root directory's record deleted: made again, its entries still there.
mkstore
tool populate
tool del I:1
