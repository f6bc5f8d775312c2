# A value-log segment no key points into: deleted.
mkstore
tool populate
tool vlog-orphan 99
