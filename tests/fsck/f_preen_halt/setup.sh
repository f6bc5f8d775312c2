# -p meets a problem it may not fix alone: RUN fsck MANUALLY (exit 4).
mkstore
tool populate
tool del "I:$(ino /a/b/hello)"
FSCK_OPT=-pf
