#!/usr/bin/env bash
# A throw-away single-node Slurm for tests/test_slurm.py, started from a temporary folder.
#
#   unshare --net --pid --mount --fork --mount-proc --kill-child bash tests/slurm_cluster.sh
#
# Run it only inside a fresh network namespace (it refuses otherwise): the daemons then listen
# and send on that namespace's loopback alone. It writes a munge key and slurm.conf, starts
# munged, slurmctld -D and slurmd -D, prints "ready <slurm.conf path>" once the node is idle,
# and waits until its stdin closes (the test ends, or dies). Then it cancels every job, stops
# each daemon by its PID and removes the folder; the same happens when anything fails.
# Client commands (sbatch, squeue, scontrol) must run in the same namespace
# (nsenter --target <pid of unshare> --net).
set -euo pipefail

ifaces=$(ip -o link show | awk -F': ' '{ print $2 }' | tr '\n' ' ')
[ "$ifaces" = "lo " ] || { echo "slurm_cluster.sh: refusing to start outside a loopback-only network namespace (interfaces: $ifaces)" >&2; exit 1; }
ip link set lo up
ip addr add 127.0.0.2/8 dev lo  # slurmctld cannot resolve its own address when 127.0.0.1 is the only one

dir=$(mktemp -d /tmp/erl-re2-slurm.XXXXXX)
pids=()  # started daemons, stopped in reverse order
stop() {
  set +e
  if [ -n "${SLURM_CONF:-}" ] && [ ${#pids[@]} -ge 3 ]; then
    scancel --user="$(id -un)" 2> /dev/null
    for _ in $(seq 50); do [ -z "$(squeue -h 2> /dev/null)" ] && break; sleep 0.2; done
  fi
  for (( i = ${#pids[@]} - 1; i >= 0; i-- )); do
    pid=${pids[$i]}
    kill -TERM "$pid" 2> /dev/null
    for _ in $(seq 50); do kill -0 "$pid" 2> /dev/null || break; sleep 0.2; done
    kill -KILL "$pid" 2> /dev/null
    wait "$pid" 2> /dev/null
  done
  rm -rf "$dir"
}
trap stop EXIT
trap 'exit 1' TERM INT HUP

fail() {
  echo "slurm_cluster.sh: $*" >&2
  for log in "$dir"/*.log; do [ -f "$log" ] && { echo "--- $log" >&2; tail -n 20 "$log" >&2; }; done
  exit 1
}

host=$(hostname -s)
mungekey --create --keyfile="$dir/munge.key"
chmod 600 "$dir/munge.key"
cat > "$dir/slurm.conf" <<EOF
ClusterName=erl-re2-test
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort=6817
SlurmdPort=6818
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge.socket,cred_expire=10
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SwitchType=switch/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SlurmdParameters=config_overrides
SchedulerParameters=sched_interval=2
ReturnToService=2
MinJobAge=600
NodeName=$host NodeAddr=127.0.0.1 CPUs=2 State=UNKNOWN
PartitionName=test Nodes=$host Default=YES MaxTime=INFINITE State=UP
PartitionName=short Nodes=$host DefaultTime=00:30:00 MaxTime=02:00:00 State=UP
EOF
mkdir -p "$dir/state" "$dir/spool"
export SLURM_CONF=$dir/slurm.conf

munged --foreground --force --socket="$dir/munge.socket" --key-file="$dir/munge.key" --pid-file="$dir/munged.pid" \
  --log-file="$dir/munged.log" --seed-file="$dir/munged.seed" < /dev/null > "$dir/munged.out.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do [ -S "$dir/munge.socket" ] && break; sleep 0.1; done
[ -S "$dir/munge.socket" ] || fail "munged did not start"
slurmctld -D -f "$SLURM_CONF" < /dev/null > "$dir/slurmctld.out.log" 2>&1 &
pids+=($!)
slurmd -D -f "$SLURM_CONF" < /dev/null > "$dir/slurmd.out.log" 2>&1 &
pids+=($!)
state=
for _ in $(seq 150); do
  state=$(sinfo -h -N -o %T 2> /dev/null | sort -u || true)  # the node once per partition
  [ "$state" = idle ] && break
  for pid in "${pids[@]}"; do kill -0 "$pid" 2> /dev/null || fail "a daemon (PID $pid) exited at start"; done
  sleep 0.2
done
[ "$state" = idle ] || fail "the node is not idle after 30 s (state: ${state:-none})"

echo "ready $SLURM_CONF"
read -r _ || true  # until the test closes our stdin
