# A key outside the schema, and malformed keys of known kinds.
mkstore
tool populate
tool put Zfoo 00
tool put Ixy 00
tool put D1 00
