# -n with -y is a usage error (16); no store named either.
mkstore
fsck_run1() {
	fsck_run "$1" -n -y
	set +e
	"$FSCK_LSMFS" -y >>"$1" 2>&1
	echo "Exit status is $?" >>"$1"
	"$FSCK_LSMFS" -n "$STORE/nothing" >>"$1" 2>&1
	echo "Exit status is $?" >>"$1"
	set -e
}
FSCK_OPT2=-n
