#!/usr/bin/env bash
# Starts and stops a one-node Slurm cluster on this machine (Debian 12, no systemd),
# for pipe's Slurm backend and its tests.
#
#   bash scripts/slurm.sh start    install slurm-wlm + munge if missing, start munged,
#                                  slurmctld and slurmd, wait until the node is idle;
#                                  prints `export SLURM_CONF=...` on stdout at the end
#   bash scripts/slurm.sh stop     stop the daemons this script started (and only those)
#   bash scripts/slurm.sh status   daemons and `sinfo`; exit 0 if the cluster is usable
#   bash scripts/slurm.sh env      prints `export SLURM_CONF=...`:
#                                    eval "$(bash scripts/slurm.sh env)"
#
# State folder: ${PIPE_SLURM_DIR:-${PIPE_HOME:-$HOME/.cache/pipe}/slurm} holds slurm.conf,
# the daemons' pid files and logs, state/ (slurmctld) and spool/ (slurmd), and
# started.pids: one `NAME PID` line for each daemon this script started. `stop` signals
# only those pids, and only while /proc/PID/comm still names that daemon, so a reused
# pid is never killed; daemons started by anything else are left alone.
#
# Clients find the config through SLURM_CONF (the conf is not in /etc/slurm). In
# addition, `start` makes /etc/slurm/slurm.conf a symlink to the state folder's conf when
# nothing exists there (or only a dangling symlink), so that sbatch/squeue/scancel also
# work without SLURM_CONF; an existing /etc/slurm/slurm.conf is never touched (then
# SLURM_CONF is required). `stop` leaves the symlink in place.
#
# A second `start` while the daemons run (found through the pid files and
# /proc/PID/comm) changes nothing and returns in about 0.1 s; it only resumes the
# node if it shows down/drain. slurm.conf is rewritten only when its content changes.
# Everything is bounded: PIPE_SLURM_TIMEOUT (default 30 s) for the daemons to come up
# or go down; on failure the error names the log and prints its tail.
# Slurm 22.05 as packaged by Debian 12. Running jobs survive a stop/start of the daemons.
set -euo pipefail

PIPE_HOME="${PIPE_HOME:-$HOME/.cache/pipe}"
DIR="${PIPE_SLURM_DIR:-$PIPE_HOME/slurm}"
CONF="$DIR/slurm.conf"
STARTED="$DIR/started.pids"
TIMEOUT="${PIPE_SLURM_TIMEOUT:-30}"
APT_PACKAGES=(slurm-wlm munge)
MUNGE_KEY=/etc/munge/munge.key
MUNGE_RUN=/run/munge
SYSTEM_CONF=/etc/slurm/slurm.conf

export SLURM_CONF="$CONF"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

log() { printf 'slurm: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

env_line() { printf 'export SLURM_CONF=%q\n' "$CONF"; }

# The pid of a live process named $1 whose pid is in file $2, or nothing.
live_pid() {
    local name=$1 file=$2 pid
    [ -r "$file" ] || return 1
    pid=$(tr -dc '0-9' < "$file")
    [ -n "$pid" ] && is_named "$pid" "$name" && printf '%s\n' "$pid"
}

is_named() {
    local comm
    comm=$(cat "/proc/$1/comm" 2>/dev/null) || return 1
    [ "$comm" = "$2" ]
}

record_started() {
    local name=$1 pid=$2
    {
        [ -f "$STARTED" ] && grep -v "^$name " "$STARTED" || true
        printf '%s %s\n' "$name" "$pid"
    } > "$STARTED.tmp"
    mv "$STARTED.tmp" "$STARTED"
}

log_tail() {
    local file=$1
    if [ -r "$file" ]; then
        log "last lines of $file:"
        tail -n 20 "$file" | sed 's/^/    /' >&2
    fi
}

install_apt() {
    local missing=()
    for p in "${APT_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return
    log "installing apt packages: ${missing[*]}"
    $SUDO apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null </dev/null
}

munge_ok() { munge -n 2>/dev/null | unmunge >/dev/null 2>&1; }

start_munge() {
    if munge_ok; then
        return
    fi
    if ! $SUDO test -s "$MUNGE_KEY"; then
        log "creating $MUNGE_KEY"
        $SUDO mkdir -p "$(dirname "$MUNGE_KEY")"
        $SUDO mungekey --create --keyfile="$MUNGE_KEY"
        $SUDO chown munge:munge "$MUNGE_KEY"
        $SUDO chmod 0400 "$MUNGE_KEY"
    fi
    $SUDO mkdir -p "$MUNGE_RUN"
    $SUDO chown munge:munge "$MUNGE_RUN"
    $SUDO chmod 0755 "$MUNGE_RUN"
    local force=()
    # A socket left by a munged that died would make a new one refuse to start.
    [ -S "$MUNGE_RUN/munge.socket.2" ] && force=(--force)
    log "starting munged"
    $SUDO runuser -u munge -- /usr/sbin/munged "${force[@]}" 9>&- \
        || { log_tail /var/log/munge/munged.log; die "munged did not start"; }
    local deadline=$((SECONDS + TIMEOUT)) pid
    until munge_ok; do
        [ $SECONDS -lt $deadline ] || { log_tail /var/log/munge/munged.log; die "munge does not answer after ${TIMEOUT}s"; }
        sleep 0.1
    done
    pid=$(live_pid munged "$MUNGE_RUN/munged.pid") || die "munged runs but $MUNGE_RUN/munged.pid names no munged"
    record_started munged "$pid"
}

# slurm.conf for this machine: CPUs and RealMemory as slurmd measures them.
conf_text() {
    local hw cpus mem
    hw=$(slurmd -C 2>/dev/null | head -n 1)
    cpus=$(sed -n 's/.*\bCPUs=\([0-9]*\).*/\1/p' <<< "$hw")
    mem=$(sed -n 's/.*\bRealMemory=\([0-9]*\).*/\1/p' <<< "$hw")
    [ -n "$cpus" ] && [ -n "$mem" ] || die "cannot read CPUs/RealMemory from \`slurmd -C\`: $hw"
    cat <<EOF
# Written by pipe's scripts/slurm.sh: a one-node cluster on this machine.
ClusterName=pipe
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
MpiDefault=none
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0
EnforcePartLimits=ALL
ReturnToService=2
MinJobAge=300
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/slurmctld.log
SlurmdLogFile=$DIR/slurmd.log
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
}

write_conf() {
    local text
    text=$(conf_text)
    if [ -f "$CONF" ] && [ "$(cat "$CONF")" = "$text" ]; then
        return
    fi
    log "writing $CONF"
    printf '%s\n' "$text" > "$CONF.tmp"
    mv "$CONF.tmp" "$CONF"
}

link_system_conf() {
    if [ -e "$SYSTEM_CONF" ]; then
        [ "$(readlink -f "$SYSTEM_CONF")" = "$(readlink -f "$CONF")" ] \
            || log "$SYSTEM_CONF exists and is not ours: clients need SLURM_CONF=$CONF"
        return
    fi
    log "linking $SYSTEM_CONF -> $CONF"
    $SUDO mkdir -p "$(dirname "$SYSTEM_CONF")"
    $SUDO ln -sfn "$CONF" "$SYSTEM_CONF"
}

# Starts daemon $1 (command in the rest) unless it runs; waits for its pid file.
start_daemon() {
    local name=$1; shift
    local pidfile="$DIR/$name.pid" logfile="$DIR/$name.log" pid
    if pid=$(live_pid "$name" "$pidfile"); then
        return
    fi
    log "starting $name"
    $SUDO "$@" 9>&- || { log_tail "$logfile"; die "$name did not start (see $logfile)"; }
    local deadline=$((SECONDS + TIMEOUT))
    until pid=$(live_pid "$name" "$pidfile"); do
        [ $SECONDS -lt $deadline ] || { log_tail "$logfile"; die "$name wrote no pid file within ${TIMEOUT}s (see $logfile)"; }
        sleep 0.05
    done
    record_started "$name" "$pid"
}

ctld_up() { timeout 5 scontrol ping 2>/dev/null | grep -q ' is UP'; }
node_state() { timeout 5 sinfo -h -o %T 2>/dev/null | head -n 1; }

# Resumes the node if it shows down/drain (not while it does not respond: `*`).
# Returns 0 when the node can run jobs.
node_ready() {
    local state
    state=$(node_state) || return 1
    case "$state" in
        idle|mixed|allocated|completing) return 0 ;;
        down|drain*|drained)
            log "node is $state: resuming it"
            timeout 5 scontrol update NodeName=localhost State=RESUME >/dev/null 2>&1 || true
            ;;
    esac
    return 1
}

daemons_running() {
    live_pid slurmctld "$DIR/slurmctld.pid" >/dev/null && live_pid slurmd "$DIR/slurmd.pid" >/dev/null
}

cmd_start() {
    mkdir -p "$DIR"
    # Serialises concurrent start/stop; the daemons are started with fd 9 closed so
    # that they do not inherit (and hold) this lock.
    exec 9> "$DIR/.lock"
    flock 9
    if daemons_running && munge_ok; then
        # Already up: nothing to change, at most a node to resume.
        if ! node_ready; then
            wait_ready
        fi
        env_line
        return
    fi
    install_apt
    start_munge
    mkdir -p "$DIR/state" "$DIR/spool"
    write_conf
    link_system_conf
    start_daemon slurmctld slurmctld -f "$CONF"
    start_daemon slurmd slurmd -f "$CONF" -N localhost
    wait_ready
    log "cluster up (partition debug); $(env_line)"
    env_line
}

wait_ready() {
    local deadline=$((SECONDS + TIMEOUT))
    until ctld_up; do
        [ $SECONDS -lt $deadline ] || { log_tail "$DIR/slurmctld.log"; die "slurmctld not UP after ${TIMEOUT}s (see $DIR/slurmctld.log)"; }
        sleep 0.1
    done
    until node_ready; do
        if [ $SECONDS -ge $deadline ]; then
            log "sinfo: $(node_state || true)"
            log_tail "$DIR/slurmd.log"
            die "node not idle after ${TIMEOUT}s (see $DIR/slurmd.log, $DIR/slurmctld.log)"
        fi
        sleep 0.1
    done
}

# Stops the daemons listed in started.pids. Each takes about 2 s to exit after SIGTERM
# (slurmctld saves its state), so all are signalled at once and awaited together.
cmd_stop() {
    if [ ! -f "$STARTED" ]; then
        log "nothing started by this script is recorded in $STARTED"
        return
    fi
    exec 9> "$DIR/.lock"
    flock 9
    local name pid live=()
    for name in slurmd slurmctld munged; do
        pid=$(awk -v n="$name" '$1 == n { print $2 }' "$STARTED")
        if [ -n "$pid" ] && is_named "$pid" "$name"; then
            log "stopping $name (pid $pid)"
            $SUDO kill -TERM "$pid" 2>/dev/null || true
            live+=("$name:$pid")
        fi
    done
    local deadline=$((SECONDS + TIMEOUT)) entry left
    while :; do
        left=()
        for entry in "${live[@]}"; do
            is_named "${entry#*:}" "${entry%%:*}" && left+=("$entry")
        done
        [ ${#left[@]} -gt 0 ] || break
        if [ $SECONDS -ge $deadline ]; then
            for entry in "${left[@]}"; do
                log "${entry%%:*} (pid ${entry#*:}) ignored SIGTERM for ${TIMEOUT}s: SIGKILL"
                $SUDO kill -KILL "${entry#*:}" 2>/dev/null || true
            done
            sleep 0.5
            for entry in "${left[@]}"; do
                ! is_named "${entry#*:}" "${entry%%:*}" || die "${entry%%:*} (pid ${entry#*:}) is still running"
            done
            break
        fi
        sleep 0.05
    done
    rm -f "$STARTED"
    if [ ${#live[@]} -eq 0 ]; then
        log "the daemons this script started had already exited"
    else
        log "stopped"
    fi
    if pgrep -x slurmstepd >/dev/null 2>&1; then
        log "note: slurmstepd processes (running jobs) remain; the next start picks them up"
    fi
}

cmd_status() {
    local ok=0 name pid
    for name in slurmctld slurmd; do
        if pid=$(live_pid "$name" "$DIR/$name.pid"); then
            echo "$name: running (pid $pid)"
        else
            echo "$name: not running"
            ok=1
        fi
    done
    if command -v munge >/dev/null && munge_ok; then
        echo "munged: running"
    else
        echo "munged: not answering"
        ok=1
    fi
    if [ $ok -eq 0 ] && ctld_up; then
        timeout 5 sinfo || ok=1
        case "$(node_state)" in
            idle|mixed|allocated|completing) ;;
            *) ok=1 ;;
        esac
    else
        ok=1
    fi
    echo "config: $CONF"
    [ $ok -eq 0 ] && echo "cluster: usable" || echo "cluster: not usable"
    return $ok
}

case "${1:-}" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    env) env_line ;;
    *) echo "usage: bash scripts/slurm.sh start|stop|status|env" >&2; exit 2 ;;
esac
