# CURRENT overwritten with garbage: rewritten to name the manifest.
mkstore
tool populate
printf 'garbage\n\0\0' >"$STORE/CURRENT"
