# Wrong entry counts (directory sizes) and a wrong '..'.
mkstore
tool populate
tool set 1 size 10
tool set "$(ino /c)" size 3
tool set "$(ino /a/b)" parent 1
