# -n on a damaged store changes no byte of it (nor creates or deletes a file).
mkstore
tool populate
tool orphan /a/b/hello
tool flush
tool del "I:$(ino /empty)"
cp "$STORE/$(newest sst)" "$STORE/000099.sst"
fsck_run1() {
	local before after
	before=$(cd "$STORE" && ls -l --time-style=+%s.%N . && md5sum ./*)
	fsck_run "$1" -n
	after=$(cd "$STORE" && ls -l --time-style=+%s.%N . && md5sum ./*)
	if [ "$before" = "$after" ]; then
		echo "store unchanged" >>"$1"
	else
		echo "STORE CHANGED" >>"$1"
		diff <(echo "$before") <(echo "$after") >>"$1" || true
	fi
}
