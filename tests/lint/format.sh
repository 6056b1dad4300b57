#!/usr/bin/env bash
# Fails if any tracked C file differs from the committed .clang-format,
# or uses a banned function (STYLE.md rule 10).
set -u
cd "$(dirname "$0")/../.."
status=0
files=$(git ls-files '*.c' '*.h' 2>/dev/null || find lib api server tests -name '*.[ch]')
for f in $files; do
    if ! clang-format --dry-run -Werror "$f" >/dev/null 2>&1; then
        echo "format: $f is not formatted (run make format)"
        status=1
    fi
done
banned='\b(strcpy|strcat|sprintf|vsprintf|atoi|atol|strtok|gets)[[:space:]]*\('
if grep -nE "$banned" $files; then
    echo "format: banned function used (see STYLE.md rule 10)"
    status=1
fi
if [ $status -eq 0 ]; then
    echo "format: $(echo "$files" | wc -w) files clean"
fi
exit $status
