// toro-fs: placeholder entry point; the back-end is being written (issue 5).
print("toro-fs: not built yet")
exit(1)
