#!/usr/bin/env bash
# The figures that matter. Built in the observability issue (#7).
echo "make bench: the benchmark is not built yet (issue #7, 'Observability and make bench')." >&2
exit 1
