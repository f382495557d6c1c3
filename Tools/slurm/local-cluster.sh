#!/usr/bin/env bash
# A one-node Slurm on this machine, for tests and for trying `headroom study --slurm` without a cluster.
#
#   Tools/slurm/local-cluster.sh start    install (Debian, as root) and start munged, slurmctld and slurmd
#   Tools/slurm/local-cluster.sh stop     stop the daemons this script started (by their PID files)
#   Tools/slurm/local-cluster.sh env      print `export SLURM_CONF=…` for client commands (eval "$(… env)")
#
# Idempotent: `start` on a running cluster only prints its environment. Everything lives under
# $HEADROOM_SLURM_DIR (default /tmp/headroom-slurm); no systemd is needed. The settings and why:
#   ProctrackType=proctrack/linuxproc, TaskPlugin=task/none  the cgroup plugins fail in containers, and a
#                                                           job can then be recorded COMPLETED without running
#   SchedulerParameters=batch_sched_delay=0                 short arrays otherwise start one wave every 3 s
#   AuthInfo=…,cred_expire=10                               requeues otherwise wait 2 minutes
#   JobCompType=jobcomp/filetxt                             there is no sacct without slurmdbd
#   MinJobAge=600                                           finished jobs stay visible to squeue/scontrol
#   MaxArraySize=8                                          small on purpose: the tests' stages exceed it, so
#                                                           headroom's splitting of large stages runs for real
set -euo pipefail
state="${HEADROOM_SLURM_DIR:-/tmp/headroom-slurm}"
conf="$state/slurm.conf"

running() { [ -f "$state/$1.pid" ] && kill -0 "$(cat "$state/$1.pid" 2>/dev/null)" 2>/dev/null; }

print_env() { echo "export SLURM_CONF=$conf"; }

start() {
    if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null || ! command -v sbatch >/dev/null; then
        [ "$(id -u)" = 0 ] || { echo "local-cluster.sh: Slurm is not installed and this is not root; install slurmctld slurmd slurm-client munge" >&2; exit 1; }
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null
    fi
    mkdir -p "$state/ctld" "$state/spool" "$state/munge"
    chmod 755 "$state" "$state/munge"
    if ! running munged; then
        [ -f "$state/munge/munge.key" ] || { dd if=/dev/urandom of="$state/munge/munge.key" bs=1024 count=1 status=none; chmod 400 "$state/munge/munge.key"; }
        munged --force --key-file="$state/munge/munge.key" --socket="$state/munge/socket" --pid-file="$state/munged.pid" \
            --log-file="$state/munged.log" --seed-file="$state/munge/seed"
    fi
    # The node as slurmd sees it (its real CPUs and memory), reachable on the loopback address.
    local node
    node="$(slurmd -C | head -n 1) NodeAddr=127.0.0.1 State=UNKNOWN"
    local name
    name="$(echo "$node" | sed -E 's/^NodeName=([^ ]+).*/\1/')"
    cat > "$conf.tmp" <<CONF
ClusterName=headroom
SlurmctldHost=$name(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$state/munge/socket,cred_expire=10
StateSaveLocation=$state/ctld
SlurmdSpoolDir=$state/spool
SlurmctldPidFile=$state/slurmctld.pid
SlurmdPidFile=$state/slurmd.pid
SlurmctldLogFile=$state/slurmctld.log
SlurmdLogFile=$state/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1024
SchedulerParameters=batch_sched_delay=0
JobCompType=jobcomp/filetxt
JobCompLoc=$state/jobcomp.txt
MinJobAge=600
MaxArraySize=8
ReturnToService=2
MpiDefault=none
$node
PartitionName=local Nodes=$name Default=YES MaxTime=INFINITE State=UP
CONF
    local changed=1
    cmp -s "$conf.tmp" "$conf" && changed=0
    mv "$conf.tmp" "$conf"
    export SLURM_CONF="$conf"
    if running slurmctld; then
        [ "$changed" = 0 ] || scontrol reconfigure
    else
        slurmctld -f "$conf"
    fi
    running slurmd || slurmd -f "$conf" -N "$name"
    # Ready when the node accepts work.
    for _ in $(seq 1 60); do
        if sinfo -h -o '%T' 2>/dev/null | grep -Eq '^(idle|mixed|allocated)'; then print_env; return 0; fi
        sleep 0.5
    done
    echo "local-cluster.sh: the node did not come up; see $state/slurmctld.log and $state/slurmd.log" >&2
    exit 1
}

stop() {
    for daemon in slurmd slurmctld munged; do
        if running "$daemon"; then
            kill "$(cat "$state/$daemon.pid")" 2>/dev/null || true
            for _ in $(seq 1 20); do running "$daemon" || break; sleep 0.25; done
        fi
        rm -f "$state/$daemon.pid"
    done
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    env) print_env ;;
    *) echo "usage: $0 start|stop|env" >&2; exit 2 ;;
esac
