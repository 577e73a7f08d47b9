# pytest-amipolicy: gather the facts of a Linux machine in one round trip.
#
# POSIX sh (dash, busybox ash, bash). Run as root when possible:
#     sudo -n sh -c "$SCRIPT" amipolicy [KEY=VALUE ...]
#     sh linux.sh [KEY=VALUE ...]
# Parameters (positional KEY=VALUE words, or the AMIPOLICY_* environment):
#     mode=fast|updates|malware   which facts to print (default fast)
#     user=NAME                   the login user (default $SUDO_USER or id -un)
#     max_kb=N                    largest file the secrets scan reads (1024)
#     roots=/a:/b                 extra directories the secrets scan covers
#     mounts=1|0                  scan every real mount (1) or only roots (0)
#     scan_timeout=SECONDS        deadline of the secrets scan (60)
#     install=1|0                 malware mode may install ClamAV (0)
#     malware_timeout=SECONDS     deadline of the malware scan (1800)
# Output: for each section a line "@@amipolicy-begin NAME@@ COMMAND", the
# output (stdout and stderr), then "@@amipolicy-end NAME STATUS@@". Secrets
# never leave the machine: the scan prints kind, path, line and a sha256
# fingerprint; shadow fields are reduced to what they mean.

LC_ALL=C
export LC_ALL
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH

mode=${AMIPOLICY_MODE:-fast}
user=${AMIPOLICY_USER:-}
max_kb=${AMIPOLICY_MAX_KB:-1024}
roots=${AMIPOLICY_ROOTS:-}
mounts=${AMIPOLICY_MOUNTS:-1}
scan_timeout=${AMIPOLICY_SCAN_TIMEOUT:-60}
install=${AMIPOLICY_INSTALL:-0}
malware_timeout=${AMIPOLICY_MALWARE_TIMEOUT:-1800}
for arg in "$@"; do
    case $arg in
    mode=*) mode=${arg#mode=} ;;
    user=*) user=${arg#user=} ;;
    max_kb=*) max_kb=${arg#max_kb=} ;;
    roots=*) roots=${arg#roots=} ;;
    mounts=*) mounts=${arg#mounts=} ;;
    scan_timeout=*) scan_timeout=${arg#scan_timeout=} ;;
    install=*) install=${arg#install=} ;;
    malware_timeout=*) malware_timeout=${arg#malware_timeout=} ;;
    esac
done
[ -n "$user" ] || user=${SUDO_USER:-$(id -un)}

tmpd=$(mktemp -d 2>/dev/null || echo "/tmp/amipolicy.$$")
mkdir -p "$tmpd" && chmod 700 "$tmpd"
made_run_sshd=""
cleanup() {
    rm -rf "$tmpd"
    [ -n "$made_run_sshd" ] && rmdir "$made_run_sshd" 2>/dev/null
}
trap cleanup EXIT
trap 'exit 130' INT TERM

is_root() { [ "$(id -u)" = 0 ]; }
have() { command -v "$1" >/dev/null 2>&1; }

section() {
    _name=$1
    _cmd=$2
    printf '@@amipolicy-begin %s@@ %s\n' "$_name" "$_cmd"
    _out=$(eval "$_cmd" 2>&1)
    _rc=$?
    if [ -n "$_out" ]; then
        case $_out in
        *@@amipolicy-*) printf '%s\n' "$_out" | sed 's/^@@amipolicy-/ @@amipolicy-/' ;;
        *) printf '%s\n' "$_out" ;;
        esac
    fi
    printf '@@amipolicy-end %s %s@@\n' "$_name" "$_rc"
}

# cat the files that exist, each after a "@@file PATH@@" line; fails if none.
dump() {
    _found=1
    for _f in "$@"; do
        [ -f "$_f" ] || continue
        printf '@@file %s@@\n' "$_f"
        cat "$_f"
        _found=0
    done
    return $_found
}

# ---------------------------------------------------------------- sshd

sshd_bin=$(command -v sshd 2>/dev/null || { [ -x /usr/sbin/sshd ] && echo /usr/sbin/sshd; })
sshd_extra=""
scan_ctx="host=scanner.invalid,addr=203.0.113.10"
# Set by prepare_sshd: whether any Match line exists, and whether one asks
# about the local side of the connection (LocalPort, LocalAddress), which
# sshd -T cannot evaluate without lport and laddr in -C.
sshd_matches=0
sshd_local=""
sshd_ports=22
sshd_addrs=0.0.0.0
# What the per-account evaluations keep of sshd -T's output.
context_keywords='passwordauthentication|kbdinteractiveauthentication|challengeresponseauthentication|usepam|permitemptypasswords|authenticationmethods|permitrootlogin|pubkeyauthentication|authorizedkeysfile|authorizedkeyscommand|authorizedkeyscommanduser|authorizedprincipalsfile|authorizedprincipalscommand|trustedusercakeys'

# The machine's own addresses: where a scanner's connection arrives.
machine_addrs() {
    {
        ip -o addr show scope global 2>/dev/null | awk '{ sub(/\/.*/, "", $4); print $4 }'
        hostname -I 2>/dev/null | tr ' ' '\n'
    } | awk 'NF && !seen[$0]++' | head -n 3
}

prepare_sshd() {
    [ -n "$sshd_bin" ] || return 0
    # shellcheck disable=SC2046
    grep -qiE '^[[:space:]]*match([[:space:]]|=)' $(sshd_files) 2>/dev/null && sshd_matches=1
    # shellcheck disable=SC2046
    if grep -qiE '^[[:space:]]*match([[:space:]]|=).*local(port|address)' $(sshd_files) 2>/dev/null; then
        sshd_local=1
        sshd_addrs=$(machine_addrs)
        [ -n "$sshd_addrs" ] || sshd_addrs=0.0.0.0
    fi

    if ! "$sshd_bin" -T -C "$(sshd_spec root)" >/dev/null 2>"$tmpd/sshd-err"; then
        _ok=1
        # sshd -T wants the privilege separation directory that the service makes
        _dir=$(tr -d '\r' <"$tmpd/sshd-err" | sed -n 's/^Missing privilege separation directory: //p')
        if [ -n "$_dir" ] && is_root && mkdir -p "$_dir" 2>/dev/null; then
            made_run_sshd=$_dir
            "$sshd_bin" -T -C "$(sshd_spec root)" >/dev/null 2>&1 && _ok=0
        fi
        # Without readable host keys sshd -T refuses to print anything; a
        # throwaway key lets it evaluate the configuration all the same.
        if [ $_ok = 1 ] && have ssh-keygen && ssh-keygen -q -t ed25519 -N '' -f "$tmpd/hostkey" >/dev/null 2>&1; then
            sshd_extra="-h $tmpd/hostkey"
        fi
    fi

    # Port is server-wide (Match cannot set it): any lport gives the same list.
    if [ -n "$sshd_local" ]; then
        _ports=$(sshd_t root 2>/dev/null | awk '$1 == "port" { print $2 }
            $1 == "listenaddress" { n = split($2, p, ":"); print p[n] }' | awk 'NF && !seen[$0]++' | head -n 4)
        [ -n "$_ports" ] && sshd_ports=$_ports
    fi
    return 0
}

# -C words for user $1, on local port $2 and address $3 when Match asks
sshd_spec() {
    if [ -n "$sshd_local" ]; then
        # shellcheck disable=SC2086
        set -- "$1" "${2:-$(first $sshd_ports)}" "${3:-$(first $sshd_addrs)}"
        echo "user=$1,$scan_ctx,lport=$2,laddr=$3"
    else
        echo "user=$1,$scan_ctx"
    fi
}

first() { echo "$1"; }

sshd_t() {
    [ -n "$sshd_bin" ] || { echo "sshd: not installed"; return 127; }
    # shellcheck disable=SC2086
    "$sshd_bin" -T $sshd_extra -C "$(sshd_spec "$@")"
}

# sshd -T for every account sshd could let in (and on every port and local
# address, when Match asks about those): a Match block may open passwords or
# keys to one account alone. Without any Match line, the evaluation for root
# holds for everyone. Kept in $tmpd/contexts for the authorized-keys section.
sshd_contexts() {
    [ -n "$sshd_bin" ] || { echo "sshd: not installed"; return 127; }
    [ $sshd_matches = 1 ] || { echo "@@no-match@@"; return 0; }
    key_accounts | cut -f1 | while read -r _n; do
        for _p in $sshd_ports; do
            for _a in $sshd_addrs; do
                _where=""
                [ -n "$sshd_local" ] && _where=" lport=$_p laddr=$_a"
                echo "@@context user=$_n$_where@@"
                # shellcheck disable=SC2086
                if "$sshd_bin" -T $sshd_extra -C "$(sshd_spec "$_n" "$_p" "$_a")" >"$tmpd/one" 2>&1; then
                    grep -E "^($context_keywords) " "$tmpd/one"
                else
                    echo "@@context-failed $?@@"
                    tail -n 5 "$tmpd/one"
                fi
                [ -n "$sshd_local" ] || break
            done
            [ -n "$sshd_local" ] || break
        done
    done >"$tmpd/contexts"
    cat "$tmpd/contexts"
}

sshd_files() {
    _seen=" "
    _todo="/etc/ssh/sshd_config"
    _depth=0
    while [ -n "$_todo" ] && [ $_depth -lt 4 ]; do
        _next=""
        for _f in $_todo; do
            case $_seen in *" $_f "*) continue ;; esac
            [ -f "$_f" ] || continue
            _seen="$_seen$_f "
            echo "$_f"
            # "Include path", "Include=path" and "Include = path" alike
            _inc=$(awk '{ sub(/^[ \t]+/, ""); sub(/^[Ii][Nn][Cc][Ll][Uu][Dd][Ee]([ \t]*=[ \t]*|[ \t]+)/, "include ") }
                $1 == "include" { for (i = 2; i <= NF && $i !~ /^#/; i++) print $i }' "$_f")
            for _p in $_inc; do
                case $_p in /*) ;; *) _p="/etc/ssh/$_p" ;; esac
                # the glob expands here, in lexical order, like sshd's
                for _g in $_p; do _next="$_next $_g"; done
            done
        done
        _todo=$_next
        _depth=$((_depth + 1))
    done
}

user_groups() {
    { echo root; echo "$user"; [ $sshd_matches = 1 ] && key_accounts | cut -f1; } |
        awk '!seen[$0]++' | while read -r _u; do
            printf '%s:%s\n' "$_u" "$(id -Gn "$_u" 2>/dev/null)"
        done
}

sshd_config() {
    # shellcheck disable=SC2046
    dump $(sshd_files)
}

# account lines "name uid home shell shell_ok home_ok" for accounts sshd could
# let in: sshd accepts a key for any account whose shell exists and is
# executable (nologin included: it still allows forwarding), so those count as
# well as accounts with a home; shell_ok says whether the shell is a login one.
key_accounts() {
    awk -F: '{ print $1 "\t" $3 "\t" $6 "\t" $7 }' /etc/passwd | while IFS="$(printf '\t')" read -r n u h s; do
        shell_ok=1
        case $s in */nologin | */false | /bin/sync | /sbin/shutdown | /sbin/halt) shell_ok=0 ;; esac
        [ -z "$s" ] || [ -x "$s" ] || shell_ok=0
        sshd_ok=0
        [ -x "${s:-/bin/sh}" ] && [ -f "${s:-/bin/sh}" ] && sshd_ok=1
        home_ok=0
        [ -n "$h" ] && [ -d "$h" ] && home_ok=1
        [ $sshd_ok = 1 ] || [ $home_ok = 1 ] || continue
        printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$n" "$u" "$h" "${s:-/bin/sh}" "$shell_ok" "$home_ok"
    done
}

expand_akf() {
    # $1 patterns, $2 user, $3 home, $4 uid: sshd's %% %u %h %U, home-relative paths
    printf '%s\n' "$1" | awk -v u="$2" -v h="$3" -v U="$4" '{
        for (i = 1; i <= NF; i++) {
            p = $i; out = ""
            for (j = 1; j <= length(p); j++) {
                c = substr(p, j, 1)
                if (c == "%" && j < length(p)) {
                    d = substr(p, j + 1, 1); j++
                    if (d == "%") out = out "%"; else if (d == "u") out = out u
                    else if (d == "h") out = out h; else if (d == "U") out = out U
                    else out = out "%" d
                } else out = out c
            }
            if (substr(out, 1, 1) != "/") out = h "/" out
            print out
        }
    }'
}

# the values of sshd -T keyword $1 for account $2 in the per-account evaluations
context_values() {
    awk -v key="$1" -v who="$2" '
        /^@@context / { sub(/@@$/, ""); split($2, kv, "="); account = kv[2]; next }
        /^@@/ { next }
        account == who && $1 == key { $1 = ""; sub(/^ /, ""); if (!seen[$0]++) print }
    ' "$tmpd/contexts" 2>/dev/null
}

authorized_keys() {
    sshd_t root >"$tmpd/root-sshd" 2>/dev/null
    _global=$(awk '$1 == "authorizedkeysfile" { $1 = ""; sub(/^ /, ""); print }' "$tmpd/root-sshd")
    [ -n "$_global" ] || { _global=".ssh/authorized_keys .ssh/authorized_keys2"; echo "@@akf-default@@"; }
    key_accounts | while IFS="$(printf '\t')" read -r n u h s shell_ok home_ok; do
        # Match blocks may give an account files of its own, on some ports only:
        # every file sshd would read for it counts.
        _akfs=""
        [ $sshd_matches = 1 ] && _akfs=$(context_values authorizedkeysfile "$n")
        [ -n "$_akfs" ] || _akfs=$_global
        printf '@@account %s %s %s %s shell=%s home=%s@@\n' "$n" "$u" "$h" "$s" "$shell_ok" "$home_ok"
        printf '%s\n' "$_akfs" | while read -r _akf; do
            printf '@@akf %s@@\n' "$_akf"
            [ "$_akf" = none ] && continue
            expand_akf "$_akf" "$n" "$h" "$u"
        done | awk '/^@@/ || !seen[$0]++' | while read -r _f; do
            case $_f in @@*) echo "$_f"; continue ;; esac
            if [ -f "$_f" ] && [ -r "$_f" ]; then
                printf '@@keyfile %s@@\n' "$_f"
                grep -n '' "$_f"
            elif [ -e "$_f" ]; then
                printf '@@keyfile-unreadable %s@@\n' "$_f"
            fi
        done
    done
    # A certificate signed by a trusted user CA logs its holder in as any
    # principal it names: the CA's key is as much a baked key as any other.
    {
        awk '$1 == "trustedusercakeys"' "$tmpd/root-sshd"
        grep '^trustedusercakeys ' "$tmpd/contexts" 2>/dev/null
    } | awk '$2 != "none" { $1 = ""; sub(/^ /, ""); if (!seen[$0]++) print }' | while read -r _ca; do
        if [ -f "$_ca" ] && [ -r "$_ca" ]; then
            printf '@@user-ca %s@@\n' "$_ca"
            grep -n '' "$_ca"
        elif [ -e "$_ca" ]; then
            printf '@@user-ca-unreadable %s@@\n' "$_ca"
        else
            printf '@@user-ca-missing %s@@\n' "$_ca"
        fi
    done
    return 0
}

host_keys() {
    _keys=$(sshd_t root 2>/dev/null | awk '$1 == "hostkey" { print $2 }' | grep -v "^$tmpd/")
    for _k in $_keys /etc/ssh/ssh_host_*_key; do
        [ -f "$_k" ] && echo "$_k"
    done | sort -u | while read -r _k; do
        stat -c 'hostkey %Y %W %n' "$_k"
    done
    echo "now $(date +%s)"
    awk '$1 == "btime" { print "btime " $2 }' /proc/stat
    echo "clk_tck $(getconf CLK_TCK 2>/dev/null || echo 100)"
    sed 's/.*) //' /proc/1/stat | awk '{ print "pid1_start_ticks " $20 }'
    # systemd's PID 1 makes its notify socket early at boot, in /run, which is
    # a fresh tmpfs every boot: its time is the clock's reading then. A clock
    # put forward since (chrony stepping it, say) makes it, and every file
    # made before the step, look older than PID 1's start as read now.
    awk '$2 == "/run" { fs = $3 } END { if (fs != "") print "run_fs " fs }' /proc/mounts
    [ -S /run/systemd/notify ] && stat -c 'bootmark %Y %W %n' /run/systemd/notify
    return 0
}

# ---------------------------------------------------------------- accounts

classify='function cls(f,  p, s) {
    if (f == "") return "@blank"
    if (f ~ /^[!*]/) return "@locked"
    if (f == "x") return "@x"
    if (f ~ /^\$[^$]+\$/) { split(f, p, "$"); s = p[2]; gsub(/[^0-9A-Za-z_-]/, "", s); return "@hash/" s }
    if (length(f) == 13 && f ~ /^[.\/0-9A-Za-z]+$/) return "@hash/des"
    if (length(f) == 20 && f ~ /^_[.\/0-9A-Za-z]+$/) return "@hash/bsdi"
    return "@other"
}'

passwd_facts() { awk -F: -v OFS=: "$classify"' { $2 = cls($2); print }' /etc/passwd; }
shadow_facts() { [ -r /etc/shadow ] || { echo "/etc/shadow: not readable"; return 1; }; awk -F: "$classify"' { print $1 ":" cls($2) }' /etc/shadow; }

sudo_check() {
    if [ "$user" = "$(id -un)" ]; then
        sudo -n true 2>&1
    elif is_root; then
        if have runuser; then
            runuser -u "$user" -- sudo -n true 2>&1
        else
            su -s /bin/sh -c 'sudo -n true' "$user" 2>&1
        fi
    else
        echo "cannot act as $user"
        return 2
    fi
    # sudo says nothing when it lets the user in: the status is the evidence.
    _r=$?
    echo "exit status $_r"
    return $_r
}

remote_agents() {
    for _b in teamviewer anydesk rustdesk x11vnc vncserver Xvnc Xtightvnc tigervncserver \
        in.telnetd telnetd in.rshd rshd in.rlogind rlogind in.rexecd xrdp chrome-remote-desktop \
        splashtop-streamer nxserver; do
        _p=$(command -v "$_b" 2>/dev/null) && echo "binary $_b $_p"
    done
    for _d in /etc/systemd/system /lib/systemd/system /usr/lib/systemd/system; do
        [ -d "$_d" ] || continue
        find "$_d" -maxdepth 2 \( -name '*.service' -o -name '*.socket' \) 2>/dev/null
    done | grep -iE 'teamviewer|anydesk|rustdesk|vnc|telnet|rsh|rlogin|rexec|xrdp|chrome-remote|splashtop|nxserver' |
        while read -r _u; do
            case $_u in
            /etc/systemd/system/*.wants/*) echo "enabled $(basename "$_u") $_u" ;;
            *) echo "unit $(basename "$_u") $_u" ;;
            esac
        done
    for _f in /etc/inetd.conf /etc/xinetd.d/*; do
        [ -f "$_f" ] || continue
        grep -nHE '^[[:space:]]*(telnet|shell|login|exec|vnc)' "$_f" 2>/dev/null | sed 's/^/inetd /'
        grep -nHiE '^[[:space:]]*disable[[:space:]]*=[[:space:]]*no' "$_f" 2>/dev/null | sed 's/^/xinetd /'
    done
    return 0
}

# ---------------------------------------------------------------- secrets

fp() { printf '%s' "$1" | sha256sum | cut -c1-16; }
tab=$(printf '\t')

token_pattern='gh[pousr]_[A-Za-z0-9]{36}|github_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59}|glpat-[A-Za-z0-9_-]{20,}|xox[baprs]-[A-Za-z0-9-]{10,}'
scan_pattern="PRIVATE KEY|PuTTY-User-Key-File-[0-9]+:|A[KS]IA[A-Z0-9]{16}|[Ss]ecret_?[Aa]ccess_?[Kk]ey|SECRET_ACCESS_KEY|$token_pattern"

# Variable names that hold a secret, matched case-insensitively: the secret
# word ends the name (API_TOKEN, DB_PASSWORD, PGPASSWORD, MYSQL_PWD, SSHPASS),
# so TOKEN_TTL, BYPASS or PASSWORD_FILE are not secrets.
secret_name='([A-Za-z0-9_]*(password|passwd|passphrase|secret|token|api_?key|access_?key|secret_?key|private_?key|auth_?key)|([A-Za-z0-9]*_)(pwd|pw)|([A-Za-z0-9]*_)?pass|sshpass)'
# A value given literally: quoted, or a bare word of three characters or
# more; never an expansion ($VAR, $(cat file)), a path or a systemd specifier.
literal='("[^"$]{3,}"|'\''[^'\'']{3,}'\''|[^-"'\''$%/[:space:];&|#][^[:space:];&|#]{2,})'
# The same, as short as a character, for options that take a glued value (-pX).
glued='("[^"]+"|'\''[^'\'']+'\''|[^-"'\''$[:space:];&|][^[:space:];&|]*)'
pseudo_fs='^(proc|sysfs|devtmpfs|devpts|tmpfs|cgroup2?|securityfs|pstore|debugfs|tracefs|configfs|fusectl|mqueue|hugetlbfs|bpf|autofs|binfmt_misc|nsfs|rpc_pipefs|efivarfs|ramfs|squashfs|nfs4?|cifs|9p|virtiofs|fuse\..*|overlay_placeholder)$'

# Runs "$@" (a find) with what is left of the scan's deadline; past it, or when
# timeout stops the command, marks the scan as cut short.
within_deadline() {
    _left=$((_deadline - $(date +%s)))
    [ $_left -gt 0 ] || { : >"$tmpd/timeout"; return 1; }
    if have timeout; then
        timeout "$_left" "$@"
    else
        "$@"
    fi
    [ $? = 124 ] && : >"$tmpd/timeout"
    return 0
}

# The files of directory $1 the scan reads (within max_kb, on its filesystem);
# fails once the deadline has passed.
small_files() {
    # -xdev: a root holding a mounted /proc would otherwise hang on files such
    # as /proc/kmsg that never end.
    within_deadline find "$1" -xdev -type f ! -size +"${max_kb}"k -print 2>/dev/null
}

# Directories of /usr/share/doc that no installed package owns: put there by
# hand or by a build script, so they may hold a seller's own notes. Without a
# package database every directory counts.
unowned_docs() {
    [ -d /usr/share/doc ] || return 0
    if [ -d /var/lib/dpkg/info ] && have dpkg-query; then
        # dpkg's file lists name every directory a package made
        cat /var/lib/dpkg/info/*.list 2>/dev/null | grep -E '^/usr/share/doc/[^/]+$' | sort -u >"$tmpd/owned-docs"
        find /usr/share/doc -mindepth 1 -maxdepth 1 -type d 2>/dev/null | sort | comm -23 - "$tmpd/owned-docs"
    elif have rpm; then
        find /usr/share/doc -mindepth 1 -maxdepth 1 -type d -print0 2>/dev/null | xargs -0 -r rpm -qf 2>/dev/null |
            sed -n 's/^file \(.*\) is not owned by any package$/\1/p'
    else
        echo /usr/share/doc
    fi
}

scan_files() {
    {
        if [ "$mounts" = 1 ]; then
            # what was read and what was left out goes to the report, by mount
            awk '!seen[$2]++ { print $2, $3 }' /proc/mounts | sort | while read -r _m _type; do
                if printf '%s\n' "$_type" | grep -qE "$pseudo_fs"; then
                    echo "@@scan-pseudo $_m $_type@@" >>"$tmpd/scanned"
                    continue
                fi
                case $_m in
                /proc/* | /sys/* | /dev/* | /run/*)
                    # Inside what every filesystem's search leaves out: such as
                    # a container manager's bind mounts in /run/host, which
                    # hold the host's files, not the image's.
                    echo "@@scan-inside-skipped $_m $_type@@" >>"$tmpd/scanned"
                    continue
                    ;;
                esac
                echo "@@scan-mount $_m $_type@@" >>"$tmpd/scanned"
                within_deadline find "$_m" -xdev \( -path /proc -o -path /sys -o -path /dev -o -path /run \
                    -o -path /var/lib/apt/lists -o -path /var/cache -o -path /var/lib/dpkg \
                    -o -path /usr/share/doc -o -path /usr/share/man -o -path /usr/share/locale \
                    -o -path /usr/share/icons -o -path /usr/share/zoneinfo -o -path /usr/include \
                    -o -path /usr/lib/modules -o -path /lib/modules -o -path /usr/src \
                    -o -path /var/lib/docker -o -path /var/lib/containerd -o -path /var/lib/containers \
                    -o -path /snap -o -path "$tmpd" \) -prune \
                    -o -type f ! -size +"${max_kb}"k -print 2>/dev/null || break
            done
            # Container images are other people's layers, but volumes hold the
            # machine's own data, where a secret may have been left.
            for _v in /var/lib/docker/volumes /var/lib/containers/storage/volumes; do
                [ -d "$_v" ] || continue
                echo "@@scan-volumes $_v@@" >>"$tmpd/scanned"
                small_files "$_v" || break
            done
            unowned_docs | while read -r _d; do
                echo "@@scan-doc $_d@@" >>"$tmpd/scanned"
                small_files "$_d" || break
            done
        fi
        _old_ifs=$IFS
        IFS=:
        for _r in $roots; do
            IFS=$_old_ifs
            [ -d "$_r" ] || { echo "@@scan-root-missing $_r@@" >>"$tmpd/scanned"; continue; }
            echo "@@scan-root $_r@@" >>"$tmpd/scanned"
            small_files "$_r" || break
        done
        IFS=$_old_ifs
    } | sort -u | tr '\n' '\0' >"$tmpd/files"
    _left=$((_deadline - $(date +%s)))
    [ $_left -gt 0 ] || { : >"$tmpd/timeout"; return 0; }
    _limit=""
    have timeout && _limit="timeout $_left"
    $_limit xargs -0 -r grep -lIE -- "$scan_pattern" <"$tmpd/files" 2>/dev/null
    [ $? = 124 ] && : >"$tmpd/timeout"
    return 0
}

is_key_block() {
    # $1: lines from a BEGIN ... PRIVATE KEY header to its END line
    grep -qE -- '-----BEGIN[A-Z0-9 ]*PRIVATE KEY[A-Z ]*-----(\\r)?\\n[A-Za-z0-9+/]{60}' "$1" && return 0
    awk '
        NR == 1 { next }
        /-----END [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----/ { ended = 1; exit }
        {
            line = $0
            gsub(/^[[:space:]"'\'']+/, "", line)
            gsub(/(\\n)?["'\'',+]*[[:space:]]*$/, "", line)
            if (line == "" || line ~ /^(Proc-Type|DEK-Info|Comment):/) next
            if (line !~ /^[A-Za-z0-9+\/=]+$/) { broken = 1; exit }
            body += length(line)
        }
        END { exit !(ended && !broken && body >= 100) }
    ' "$1"
}

report_matches() {
    # $1 kind, $2 file, $3 grep -E pattern, $4 how many trailing chars are the secret (0: all)
    grep -noE -- "$3" "$2" 2>/dev/null | while IFS= read -r _m; do
        _line=${_m%%:*}
        _val=${_m#*:}
        if [ "$4" != 0 ]; then _val=$(printf '%s' "$_val" | sed "s/.*\\(.\\{$4\\}\\)\$/\\1/"); fi
        printf '%s\t%s\t%s\t%s\t\n' "$1" "$2" "$_line" "$(fp "$_val")"
    done
}

# A PuTTY private key file: its header, and the private half in the file.
putty_key() {
    _head=$(grep -nE '^PuTTY-User-Key-File-[0-9]+: ' "$1" 2>/dev/null | head -n 1)
    [ -n "$_head" ] && grep -qE '^Private-Lines: [0-9]+' "$1" || return 0
    _kind=private-key
    grep -qE '^Encryption: none' "$1" || _kind=encrypted-private-key
    printf '%s\t%s\t%s\t%s\t\tPuTTY\n' "$_kind" "$1" "${_head%%:*}" "$(sha256sum <"$1" | cut -c1-16)"
}

# One way of writing a secret on a command line, in history file $_hist
# (reported as $_path): $1 label ("=" takes the variable's name), $2 grep
# flags, $3 pattern, $4 sed -E script that leaves only the secret of a match.
history_rule() {
    # shellcheck disable=SC2086
    grep $2 -- "$3" "$_hist" 2>/dev/null | while IFS= read -r _m; do
        _line=${_m%%:*}
        _text=${_m#*:}
        _label=$1
        if [ "$_label" = "=" ]; then
            _label=$(printf '%s\n' "$_text" | sed -E 's/^[^A-Za-z0-9_]//; s/=.*//')
            # AWS keys are AWS-KEYS' to report
            case $_label in [Aa][Ww][Ss]_*) continue ;; esac
        fi
        _val=$(printf '%s\n' "$_text" | sed -E "$4" | sed -E "s/^[\"']//; s/[\"']\$//")
        printf 'history-secret\t%s\t%s\t%s\t\t%s\n' "$_path" "$_line" "$(fp "$_val")" "$_label"
    done
}

# Secrets typed on command lines; precise both ways: "ssh -p2222" and
# "tar -pzxvf" are options, "mysql -p db" asks for the password.
history_secrets() {
    _path=$1
    _hist=$tmpd/history
    # the MySQL client writes spaces as \040
    sed 's/\\040/ /g' "$1" >"$_hist" 2>/dev/null || return 0
    _v=$literal
    {
        history_rule = -inoE "(^|[^A-Za-z0-9_])$secret_name=$_v" 's/^[^A-Za-z0-9_]?[A-Za-z0-9_]*=//'
        history_rule "--option" -noE "(^|[[:space:]])--(password|passwd|pass|token|secret|api-key|apikey|access-token|auth-token|client-secret|http-password|ftp-password|proxy-password)(=|[[:space:]]+)$_v" 's/^[^-]*--[a-z-]+(=|[[:space:]]+)//'
        history_rule "-pass pass:" -noE "-pass(in|out)?[[:space:]]+pass:$glued" 's/.*pass://'
        history_rule "sshpass -p" -noE "sshpass([[:space:]]+(-[ev]|-[dfP][[:space:]]*[^-[:space:]][^[:space:]]*))*[[:space:]]+-p[[:space:]]*$glued" 's/.*[[:space:]]-p[[:space:]]*//'
        history_rule "registry login -p" -noE "(docker|podman|buildah|skopeo|nerdctl|helm[[:space:]]+registry)[[:space:]]+login([[:space:]]+[^[:space:];&|]+)*[[:space:]]+(-p|--password)(=|[[:space:]]+)$glued" 's/.*[[:space:]](-p|--password)(=|[[:space:]]+)//'
        history_rule "curl -u" -noE "curl[[:space:]]([^|;&]*[[:space:]])?(-u|--user)[[:space:]]*(\"[^\":]+:[^\"]+\"|'[^':]+:[^']+'|[^-\"'[:space:]][^:[:space:]]*:[^[:space:]]+)" 's/^curl[[:space:]]([^|;&]*[[:space:]])?(-u|--user)[[:space:]]*//; s/^(["'\''])?[^:]*:/\1/'
        history_rule "mysql -p" -noE "(mysql|mysqldump|mysqladmin|mysqlimport|mysqlshow|mysqlcheck|mariadb|mariadb-dump|mariadb-admin)[[:space:]]([^|;&]*[[:space:]])?-p$glued" 's/.*[[:space:]]-p//'
        history_rule "credentials in a URL" -noE "[A-Za-z][A-Za-z0-9+.-]*://[^/[:space:]:@\"']+:[^/[:space:]@\"'\$]+@" 's/^.*:\/\/[^:]*://; s/@$//'
        history_rule "authorization header" -inoE "(authorization|x-api-key|x-auth-token|private-token|api-key)[[:space:]]*:[[:space:]]*((bearer|basic|token)[[:space:]]+)?[A-Za-z0-9._~+/=-]{8,}" 's/^[^:]*:[[:space:]]*//; s/^([Bb][Ee][Aa][Rr][Ee][Rr]|[Bb][Aa][Ss][Ii][Cc]|[Tt][Oo][Kk][Ee][Nn])[[:space:]]+//'
        history_rule "SQL password" -inoE "(identified[[:space:]]+(with[[:space:]]+[a-z_]+[[:space:]]+)?by|with[[:space:]]+(encrypted[[:space:]]+)?password)[[:space:]]+'[^']+'" "s/^[^']*//"
    } | awk -F '\t' '!seen[$2 FS $3 FS $4]++'
}

scan_secrets() {
    _started=$(date +%s)
    _deadline=$((_started + scan_timeout))
    : >"$tmpd/scanned"
    scan_files >"$tmpd/hits"
    _rc=0
    [ -f "$tmpd/timeout" ] && { echo "@@truncated after ${scan_timeout}s@@"; _rc=124; }
    cat "$tmpd/scanned"
    # files: listed and searched (size within max_kb); candidates: files
    # holding a pattern, examined line by line below
    echo "@@scanned mounts=$mounts max_kb=$max_kb timeout=$scan_timeout" \
        "files=$(tr -cd '\000' <"$tmpd/files" | wc -c | tr -d ' ')" \
        "candidates=$(wc -l <"$tmpd/hits" | tr -d ' ')" \
        "seconds=$(($(date +%s) - _started))@@"
    while IFS= read -r _f; do
        grep -nE -- '-----BEGIN ([A-Z0-9]+ )*PRIVATE KEY( BLOCK)?-----' "$_f" 2>/dev/null | while IFS=: read -r _line _rest; do
            sed -n "${_line},/-----END .*PRIVATE KEY/p" "$_f" >"$tmpd/block"
            # A header in source code or prose is not a key, nor is an example
            # cut short with "...": a key is a whole PEM block, or one escaped
            # into a single JSON or code string.
            is_key_block "$tmpd/block" || continue
            _kind=private-key
            case $_rest in *ENCRYPTED*) _kind=encrypted-private-key ;; esac
            grep -q 'Proc-Type: 4,ENCRYPTED' "$tmpd/block" && _kind=encrypted-private-key
            _sum=$(sha256sum <"$tmpd/block" | cut -c1-16)
            printf '%s\t%s\t%s\t%s\t\n' "$_kind" "$_f" "$_line" "$_sum"
        done
        grep -noE -- 'A[KS]IA[A-Z0-9]{16}' "$_f" 2>/dev/null | while IFS=: read -r _line _id; do
            printf 'aws-access-key-id\t%s\t%s\t%s\t%s\n' "$_f" "$_line" "$(fp "$_id")" "$_id"
        done
        report_matches aws-secret-access-key "$_f" '([Aa][Ww][Ss]_?)?[Ss][Ee][Cc][Rr][Ee][Tt]_?[Aa][Cc][Cc][Ee][Ss][Ss]_?[Kk][Ee][Yy][^A-Za-z0-9/+]{1,8}[A-Za-z0-9/+]{40}' 40
        report_matches token "$_f" "$token_pattern" 0
        putty_key "$_f"
    done <"$tmpd/hits"
    for _h in $({ awk -F: '{ print $6 }' /etc/passwd; echo /root; } | sort -u); do
        [ -d "$_h" ] || continue
        # .*history holds .bash_history, .zsh_history, .mysql_history ...
        for _f in "$_h"/.*history "$_h"/.local/share/*/history "$_h"/.local/share/fish/fish_history; do
            # A link may lead out of the tree or to a file that never ends
            # (/proc/kmsg); a file it leads to inside the tree is scanned above.
            [ -f "$_f" ] && [ ! -L "$_f" ] || continue
            history_secrets "$_f"
        done
        [ -f "$_h/.git-credentials" ] && report_matches git-credentials "$_h/.git-credentials" '.*://[^:]+:[^@]+@.*' 0
        [ -f "$_h/.docker/config.json" ] && report_matches docker-auth "$_h/.docker/config.json" '"(auth|identitytoken)"[[:space:]]*:[[:space:]]*"[^"]+"' 0
        [ -f "$_h/.netrc" ] && report_matches netrc "$_h/.netrc" 'password[[:space:]]+[^[:space:]]+' 0
        [ -f "$_h/.pgpass" ] && report_matches pgpass "$_h/.pgpass" '^[^#].*:.*:.*:.*:.+' 0
        [ -f "$_h/.aws/credentials" ] && echo "aws-credentials-file${tab}$_h/.aws/credentials${tab}0${tab}${tab}"
        for _c in .config/gcloud/credentials.db .config/gcloud/application_default_credentials.json \
            .azure/accessTokens.json .azure/msal_token_cache.json .azure/service_principal_entries.json; do
            [ -f "$_h/$_c" ] && echo "cloud-credentials-file${tab}$_h/$_c${tab}0${tab}${tab}"
        done
    done
    return $_rc
}

# $1 kind of file (unit or env), $2 path: variables with a secret's name and
# a literal value, as "service-secret PATH LINE FINGERPRINT - NAME".
service_secrets() {
    if [ "$1" = unit ]; then
        # Environment=A=1 "API_TOKEN=..." B=2: any of the assignments
        grep -n '^[[:space:]]*Environment=' "$2" 2>/dev/null | while IFS=: read -r _line _text; do
            printf '%s\n' "${_text#*=}" |
                grep -oiE -- "(^|[[:space:]])\"$secret_name=[^\"\$]+\"|(^|[[:space:]\"'])$secret_name=$literal" |
                sed "s/^/$_line:/"
        done
    else
        grep -noiE -- "^[[:space:]]*(export[[:space:]]+)?$secret_name=$literal" "$2" 2>/dev/null
    fi | while IFS=: read -r _line _m; do
        _name=$(printf '%s\n' "$_m" | sed -E 's/^[[:space:]"'\'']*(export[[:space:]]+)?//; s/=.*//')
        _val=$(printf '%s\n' "${_m#*=}" | sed -E "s/^[\"']//; s/[\"']\$//")
        case $_name in [Aa][Ww][Ss]_*) continue ;; esac
        case $(printf '%s' "$_val" | tr 'A-Z' 'a-z') in yes | no | true | false | none | null) continue ;; esac
        printf 'service-secret\t%s\t%s\t%s\t\t%s\n' "$2" "$_line" "$(fp "$_val")" "$_name"
    done
}

service_env() {
    _units=""
    for _f in /etc/systemd/system/*.service /etc/systemd/system/*.d/*.conf \
        /lib/systemd/system/*.service /lib/systemd/system/*.d/*.conf \
        /usr/lib/systemd/system/*.service /usr/lib/systemd/system/*.d/*.conf; do
        [ -f "$_f" ] && _units="$_units $_f"
    done
    # the files units read their environment from (EnvironmentFile=-/path)
    # shellcheck disable=SC2086
    _envfiles=$(grep -h '^[[:space:]]*EnvironmentFile=' $_units 2>/dev/null |
        sed 's/^[^=]*=[[:space:]]*//; s/^-//' | grep -v '%' | sort -u)
    # how many distinct unit and environment files are read, for the report
    # shellcheck disable=SC2086
    _read=$(for _f in $_units /etc/environment /etc/default/* /etc/sysconfig/* /etc/profile.d/* $_envfiles; do
        [ -f "$_f" ] && echo "$_f"
    done | sort -u | wc -l | tr -d ' ')
    echo "@@read $_read@@"
    for _f in $_units /etc/environment /etc/default/* /etc/sysconfig/* /etc/profile.d/* $_envfiles; do
        [ -f "$_f" ] || continue
        # AWS variables set for services, where an instance role should be used
        grep -noE -- '(AWS_ACCESS_KEY_ID|AWS_SECRET_ACCESS_KEY|AWS_SESSION_TOKEN)[[:space:]]*=[[:space:]]*["'\'']?[^"'\''[:space:]]+' "$_f" 2>/dev/null |
            while IFS=: read -r _line _m; do
                _var=${_m%%=*}
                _val=$(printf '%s' "${_m#*=}" | sed "s/^[[:space:]\"']*//")
                _id=""
                case $_var in *ACCESS_KEY_ID*) _id=$_val ;; esac
                printf 'aws-env\t%s\t%s\t%s\t%s\t%s\n' "$_f" "$_line" "$(fp "$_val")" "$_id" "$(echo "$_var" | tr -d ' ')"
            done
        case " $_units " in
        *" $_f "*) service_secrets unit "$_f" ;;
        *) service_secrets env "$_f" ;;
        esac
    done | awk -F '\t' '!seen[$1 FS $2 FS $3 FS $4]++'
    return 0
}

region_refs() {
    _dirs=""
    for _d in /etc /opt /srv /usr/local/etc /usr/local/bin /var/lib/cloud/scripts; do
        [ -d "$_d" ] && _dirs="$_dirs $_d"
    done
    # shellcheck disable=SC2086
    find $_dirs -xdev -type f ! -size +"${max_kb}"k ! -path '*/doc/*' ! -path '*/man/*' ! -name '*.md' \
        ! -name '*.txt' ! -name '*.html' ! -name 'README*' -print 2>/dev/null |
        tr '\n' '\0' | xargs -0 -r grep -nIHoE -- \
            'ami-[0-9a-f]{8}([0-9a-f]{9})?|[a-z0-9.-]*\.?(us|eu|ap|sa|ca|me|af|il|mx|cn)(-gov|-iso|-isob)?-(north|south|east|west|central|northeast|northwest|southeast|southwest)-[0-9]\.?[a-z0-9.-]*' 2>/dev/null |
        grep -v '/etc/ssh/ssh_host_' | head -n 500 >"$tmpd/region"
    cat "$tmpd/region"
    # When each file was last written: cloud-init writes the launch region into
    # some files (apt mirrors, yum variables) at first boot, which is not baked in.
    cut -d: -f1 "$tmpd/region" | sort -u | while read -r _f; do
        stat -c '@@written %Y %n@@' "$_f" 2>/dev/null
    done
    return 0
}

mounts_facts() {
    if have findmnt; then
        echo "# findmnt -rn -o TARGET,SOURCE,FSTYPE,OPTIONS"
        findmnt -rn -o TARGET,SOURCE,FSTYPE,OPTIONS
    else
        echo "# /proc/mounts"
        cat /proc/mounts
    fi
    # systemd's container interface: a container manager says who it is here,
    # and mounts the host's files below /run/host.
    [ -r /run/host/container-manager ] && echo "# container manager: $(head -n 1 /run/host/container-manager)"
    return 0
}

fscrypt_facts() {
    have fscrypt || { echo "fscrypt: not installed"; return 0; }
    fscrypt status 2>&1
    return 0
}

# ---------------------------------------------------------------- slow facts

# apt-get -s lists what dist-upgrade would install, each package at its
# candidate version. A security fix that a later -updates version superseded
# is not shown, yet the installed version lacks it all the same: apt-cache
# policy lists every version between the installed one and the candidate,
# with the suites that offer it ("between: PKG INSTALLED CANDIDATE VERSION
# URL SUITE").
apt_between() {
    _pkgs=$(awk '$1 == "Inst" { print $2 }' "$tmpd/simulate" | sort -u)
    [ -n "$_pkgs" ] || return 0
    # shellcheck disable=SC2086
    apt-cache policy $_pkgs 2>/dev/null | awk '
        /^[^ ]/ { pkg = $0; sub(/:$/, "", pkg); table = 0; next }
        /^  Installed:/ { installed = $2; next }
        /^  Candidate:/ { candidate = $2; next }
        /^  Version table:/ { table = 1; seen = 0; between = 0; next }
        !table { next }
        # the table runs from the newest version down; below the installed
        # one nothing is pending
        /^ \*\*\* / { table = 0; next }
        /^     [^ ]/ {
            version = $1
            if (version == installed) table = 0
            else if (version == candidate) seen = 1
            else between = seen
            next
        }
        /^        [^ ]/ && between && installed != "(none)" && $2 != "/var/lib/dpkg/status" {
            print "between: " pkg " " installed " " candidate " " version " " $2 " " $3
        }
    '
}

apt_updates() {
    echo "manager: apt"
    _lists=/var/lib/apt/lists
    _stale=$(find "$_lists" -maxdepth 1 -name '*Packages*' -mmin -720 2>/dev/null | head -n 1)
    if [ -z "$_stale" ]; then
        if is_root; then
            apt-get update -qq >"$tmpd/refresh" 2>&1
            _r=$?
            echo "refresh: apt-get update (status $_r)"
            sed 's/^/refresh-output: /' "$tmpd/refresh" | tail -n 20
            [ $_r = 0 ] || return $_r
            # apt-get update exits 0 when a mirror cannot be reached and
            # keeps the old lists: they cannot show what is pending now.
            if grep -qE '^(W|E): (Failed to fetch|Some index files failed)' "$tmpd/refresh"; then
                echo "refresh: failed, some package lists could not be fetched and are older than 12 hours"
                return 100
            fi
        else
            echo "refresh: skipped, not root; package lists may be stale"
        fi
    else
        echo "refresh: package lists are less than 12 hours old"
    fi
    apt-cache policy 2>/dev/null | awk '/^ *[0-9-]+ [a-z]+:\/\// { print "repo: " $2 " " $3 }' | sort -u
    echo "command: apt-get -s -o Debug::NoLocking=1 dist-upgrade"
    apt-get -s -o Debug::NoLocking=1 dist-upgrade >"$tmpd/simulate" 2>&1
    _r=$?
    grep -E '^(Inst |E: |W: )' "$tmpd/simulate"
    # a broken dpkg state or unmet dependencies list nothing to install
    if [ $_r != 0 ]; then
        echo "apt-get: simulation failed (status $_r)"
        return $_r
    fi
    echo "command: apt-cache policy PACKAGE... (versions between installed and candidate)"
    apt_between
}

os_release_file=/etc/os-release

is_amazon_linux_2023() {
    grep -qE '^ID="?amzn"?$' "$os_release_file" 2>/dev/null &&
        grep -qE '^VERSION_ID="?2023' "$os_release_file" 2>/dev/null
}

dnf_updates() {
    _pm=dnf
    have dnf || _pm=yum
    echo "manager: $_pm"
    # stdout holds the table of enabled repositories; stderr the notes of
    # plugins such as "This system is not registered ..."
    $_pm -q repolist >"$tmpd/repos" 2>"$tmpd/repos-err"
    sed 's/^/repo: /' "$tmpd/repos"
    sed 's/^/repo-note: /' "$tmpd/repos-err"
    echo "command: $_pm -q updateinfo list security"
    $_pm -q updateinfo list security >"$tmpd/advisories" 2>&1
    _r=$?
    cat "$tmpd/advisories"
    [ $_r = 0 ] || return $_r
    is_amazon_linux_2023 || return 0

    # Each Amazon Linux 2023 install stays on the release it was built from,
    # and its repository is frozen at that release: fixes published in later
    # releases are seen only in the latest release's repository.
    echo "release: $(rpm -q --qf '%{VERSION}' system-release 2>/dev/null) (Amazon Linux 2023 stays on it); later releases are consulted with --releasever=latest"
    $_pm -q --releasever=latest repolist >"$tmpd/repos" 2>&1
    _r=$?
    sed 's/^/repo-latest: /' "$tmpd/repos"
    [ $_r = 0 ] || return $_r
    echo "command: $_pm -q --releasever=latest updateinfo list security"
    $_pm -q --releasever=latest updateinfo list security >"$tmpd/advisories" 2>&1
    _r=$?
    sed 's/^/latest: /' "$tmpd/advisories"
    return $_r
}

zypper_updates() {
    echo "manager: zypper"
    # listed first: a refresh that fails for want of any repository says so
    zypper --non-interactive lr -u 2>&1 | sed 's/^/repo: /'
    zypper --non-interactive --quiet refresh >"$tmpd/refresh" 2>&1
    _r=$?
    echo "refresh: zypper refresh (status $_r)"
    if [ $_r != 0 ]; then
        sed 's/^/refresh-output: /' "$tmpd/refresh" | tail -n 20
        return $_r
    fi
    echo "command: zypper --non-interactive list-patches --category security"
    zypper --non-interactive list-patches --category security 2>&1
}

check_updates() {
    if have apt-get; then
        apt_updates
    elif have dnf || have yum; then
        dnf_updates
    elif have zypper; then
        zypper_updates
    else
        echo "manager: none found (apt, dnf, yum, zypper)"
        return 127
    fi
}

has_default_route() {
    # Without a default route no mirror is reachable: waiting for DNS and
    # download timeouts would only delay the same answer.
    # Only a route that is up counts (flag 0x1, the last hex digit odd): every
    # network namespace has an IPv6 default route on lo that rejects traffic.
    awk 'NR > 1 && $2 == "00000000" && $4 ~ /[13579bdfBDF]$/ { found = 1 }
        END { exit !found }' /proc/net/route 2>/dev/null && return 0
    awk '$1 ~ /^0+$/ && $2 == "00" && $9 ~ /[13579bdf]$/ { found = 1 }
        END { exit !found }' /proc/net/ipv6_route 2>/dev/null
}

# Kernel and runtime trees, never files of the image; "(/|$)" keeps
# /sysroot, /devel or /runner in the scan.
pseudo_dirs='^/(proc|sys|dev|run)(/|$)'

# What the malware scan covers, one per line: /, the image itself even on a
# container's overlay, and every filesystem on a block device (or a ZFS
# dataset) mounted outside the kernel's trees; each is scanned without
# crossing into the next.
malware_targets() {
    {
        echo /
        awk '$1 ~ /^\/dev\// || $3 == "zfs" { print $2 }' /proc/mounts 2>/dev/null |
            sed 's/\\040/ /g'
    } | grep -vE "$pseudo_dirs" | awk '!seen[$0]++'
}

scan_malware() {
    # Why no scanner could be had, in words: the MALWARE verdict's reason.
    _why=""
    if have clamscan; then
        :
    elif [ "$install" != 1 ]; then
        _why="installing ClamAV was not attempted on this kind of target: the plugin installs software only on a machine it throws away (--ami, --ami-image), never on a running --ami-host"
    elif ! is_root; then
        _why="none could be installed: installing ClamAV needs root, and the check did not run as root"
    elif ! has_default_route; then
        echo "install: not attempted, the machine has no default route to a package mirror"
        _why="none could be installed: the machine has no route to a package mirror"
    else
        _pm=""
        for _c in apt-get dnf yum zypper; do
            have "$_c" && { _pm=$_c; break; }
        done
        echo "install: clamav${_pm:+ with $_pm} (the machine is thrown away after the check)"
        case $_pm in
        apt-get) DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clamav >/dev/null 2>&1 ;;
        dnf) dnf -y -q install clamav clamav-update >/dev/null 2>&1 ;;
        yum) yum -y -q install clamav clamav-update >/dev/null 2>&1 ;;
        zypper) zypper --non-interactive -q install clamav >/dev/null 2>&1 ;;
        esac
        have freshclam && freshclam --quiet >/dev/null 2>&1
        if [ -z "$_pm" ]; then
            _why="none could be installed: the machine has no package manager the plugin knows (apt-get, dnf, yum, zypper)"
        else
            _why="none could be installed: '$_pm install clamav' did not provide clamscan (is ClamAV in the configured repositories?)"
        fi
    fi
    if ! have clamscan; then
        echo "skip: no malware scanner (clamscan) is installed, and $_why"
        return 77
    fi
    echo "scanner: $(clamscan --version 2>&1)"
    # Which databases the scan used, and how old the official ones are.
    for _db in /var/lib/clamav/*; do
        [ -f "$_db" ] || continue
        case $_db in
        *.cvd | *.cld)
            _built=$(sigtool --info "$_db" 2>/dev/null | sed -n 's/^Build time: //p')
            echo "signatures: $_db${_built:+ built $_built}"
            ;;
        *.[hmn]db | *.hsb | *.msb | *.ldb | *.cdb | *.ndu | *.ldu | *.yar | *.yara | *.ign2 | *.fp | *.sfp)
            echo "signatures: $_db"
            ;;
        esac
    done
    # A whole disk can take long: the scan gets a deadline, not the run.
    _bound=""
    have timeout && _bound="timeout $malware_timeout"
    _targets=$(malware_targets)
    set --
    while IFS= read -r _t; do
        [ -n "$_t" ] && set -- "$@" "$_t"
    done <<TARGETS
$_targets
TARGETS
    echo "command: ${_bound:+$_bound }clamscan -r -i --cross-fs=no --exclude-dir='$pseudo_dirs' $*"
    $_bound clamscan -r -i --cross-fs=no --exclude-dir="$pseudo_dirs" "$@" >"$tmpd/clam" 2>&1
    _r=$?
    tail -n 200 "$tmpd/clam"
    if [ -n "$_bound" ] && [ $_r = 124 ]; then
        echo "timeout: the scan did not finish within $malware_timeout s"
    fi
    return $_r
}

# ---------------------------------------------------------------- main

case $mode in
updates)
    section updates 'check_updates'
    exit 0
    ;;
malware)
    # status 0 clean, 1 infected files listed, 77 no scanner, other: failed
    section malware 'scan_malware'
    exit 0
    ;;
esac

prepare_sshd
section meta 'echo "uid=$(id -u) user=$user sshd_extra=${sshd_extra:+temporary-host-key} started=$(date +%s)"'
section sudo 'sudo_check'
section sudo-list 'sudo -n -l -U "$user"'
section os-release 'cat /etc/os-release'
section usr-lib-os-release 'cat /usr/lib/os-release'
section system-release 'cat /etc/system-release'
section redhat-release 'cat /etc/redhat-release'
section lsb-release 'cat /etc/lsb-release'
section uname 'uname -srm'
section sshd-root 'sshd_t root'
section sshd-login 'sshd_t "$user"'
section sshd-user 'sshd_t amipolicy-nobody'
# before authorized-keys, which reads what it keeps
section sshd-contexts 'sshd_contexts'
section sshd-config 'sshd_config'
section user-groups 'user_groups'
section cloud-init 'grep -nHiE "^[[:space:]]*ssh_pwauth[[:space:]]*:" /etc/cloud/cloud.cfg /etc/cloud/cloud.cfg.d/*.cfg; test -d /etc/cloud'
section passwd 'passwd_facts'
section shadow 'shadow_facts'
section authorized-keys 'authorized_keys'
section host-keys 'host_keys'
section secrets 'scan_secrets'
section service-env 'service_env'
section mounts 'mounts_facts'
section lsblk 'lsblk -J -o NAME,TYPE,FSTYPE,MOUNTPOINT,PKNAME'
section dmcrypt 'dmsetup table --target crypt'
section fscrypt 'fscrypt_facts'
section listeners 'ss -Hltnup'
section remote-agents 'remote_agents'
section region 'region_refs'
section done 'echo "finished=$(date +%s)"'
