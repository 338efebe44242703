# Sourced by scripts/install-deps.sh and scripts/vm-kernel.sh.

# apt_update ARGS...: runs `apt-get ARGS... update`, waiting (and saying so
# once) up to 5 minutes while another apt holds its lock. On a fresh machine
# apt-daily updates the lists at boot, and apt-get update fails at once on
# the lists lock (exit 100, "Could not get lock"): DPkg::Lock::Timeout covers
# only dpkg's lock.
apt_update() {
	local deadline=$((SECONDS + 300)) said= out rc
	while :; do
		rc=0
		out=$(LC_ALL=C apt-get "$@" update 2>&1) || rc=$?
		if [ "$rc" -eq 0 ] || [[ $out != *"Could not get lock"* ]] || [ "$SECONDS" -ge "$deadline" ]; then
			[ -z "$out" ] || printf '%s\n' "$out" >&2
			return "$rc"
		fi
		if [ -z "$said" ]; then
			echo "apt-get update: waiting up to 5 minutes for another apt to release its lock" >&2
			said=1
		fi
		sleep 5
	done
}
