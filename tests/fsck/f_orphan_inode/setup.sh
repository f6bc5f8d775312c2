# /a/b/hello unlinked while open, then a crash: an orphan record to reclaim.
mkstore
tool populate
tool orphan /a/b/hello
