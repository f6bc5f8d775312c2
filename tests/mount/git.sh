#!/usr/bin/env bash
# git.sh - git on the mount: init, add, several commits (with renames,
# deletions and an executable bit), gc (packs, renames, fsyncs), clone on
# the mount and from the mount to the host, fsck --full of each, and the
# checked-out trees must match.
. "$(dirname "$0")/../lib/common.sh"
require_cmd git

setup
export HOME=$TMP GIT_CONFIG_NOSYSTEM=1
export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@example.org
export GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@example.org
git config --global init.defaultBranch main
git config --global core.fsync all
make_fs
make_tree "$TMP/src" 400
mount_fs

repo=$MNT/repo
git init -q "$repo"
cp -a "$TMP/src/." "$repo/"
git -C "$repo" add -A
git -C "$repo" commit -q -m "first"
for i in 1 2 3; do
	find "$repo" -path "$repo/.git" -prune -o -name "f*$i.dat" -type f -print |
		while read -r f; do echo "change $i" >>"$f"; done
	git -C "$repo" mv d0000 "moved$i" 2>/dev/null || true
	echo "#!/bin/sh" >"$repo/script$i.sh"
	chmod +x "$repo/script$i.sh"
	git -C "$repo" rm -q "$(git -C "$repo" ls-files | sed -n 5p)"
	git -C "$repo" add -A
	git -C "$repo" commit -q -m "change $i"
done
[ "$(git -C "$repo" rev-list --count HEAD)" -eq 4 ] || fail "expected 4 commits"
git -C "$repo" fsck --full --strict || fail "git fsck of the repository"
git -C "$repo" gc -q
git -C "$repo" fsck --full --strict || fail "git fsck after gc"
[ -z "$(git -C "$repo" status --porcelain)" ] || fail "working tree not clean"

git clone -q "$repo" "$MNT/clone"
git -C "$MNT/clone" fsck --full --strict || fail "git fsck of the clone on the mount"
git clone -q --no-local "$repo" "$TMP/hostclone"
git -C "$TMP/hostclone" fsck --full --strict || fail "git fsck of the clone on the host"
diff -r --no-dereference --exclude=.git --exclude=empty-dir "$repo" "$MNT/clone" || fail "clone on the mount differs"
diff -r --no-dereference --exclude=.git --exclude=empty-dir "$repo" "$TMP/hostclone" || fail "clone on the host differs"
[ -x "$MNT/clone/script3.sh" ] || fail "executable bit lost"
head=$(git -C "$repo" rev-parse HEAD)
unmount_fs

mount_fs
git -C "$repo" fsck --full --strict || fail "git fsck after remount"
[ "$(git -C "$MNT/clone" rev-parse HEAD)" = "$head" ] || fail "clone HEAD changed"
git -C "$MNT/clone" status --porcelain | grep >/dev/null . && fail "clone not clean after remount"
unmount_fs
finish
