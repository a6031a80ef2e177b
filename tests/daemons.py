"""Real daemons for the tests of running beyond one machine (SPEC §7): a one-node
SLURM cluster (munged, slurmctld, slurmd) and an sshd, each started here on
127.0.0.1 with its own files under a temp dir, and stopped by PID.

Their programs come from Debian's packages, which ``.ci/run`` installs. Without
them a test fails with the reason in CI (``CI=true``) and is skipped locally.
"""

from __future__ import annotations

import getpass
import os
import shlex
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest


def need(*programs: str, package: str) -> dict[str, str]:
    """The paths of programs; without them, fail in CI and skip elsewhere."""
    found = {
        name: shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin") for name in programs
    }
    missing = [name for name, path in found.items() if path is None]
    if missing:
        reason = f"{', '.join(missing)} not found: apt-get install -y {package}"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI needs {reason} (.ci/run installs it)", pytrace=False)
        pytest.skip(reason)
    return {name: str(path) for name, path in found.items()}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(check: Callable[[], object], what: str, timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while not check():
        if time.monotonic() > end:
            raise AssertionError(f"{what} within {timeout:g} s")
        time.sleep(0.1)


def stop_pid_file(path: Path, sig: int = signal.SIGTERM) -> None:
    """Stop the daemon whose PID file this is, and wait until it is gone."""
    try:
        pid = int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return
    end = time.monotonic() + 15
    while time.monotonic() < end:
        if not _alive(pid):
            return
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    """Is the process running? A zombie (exited, not yet reaped by a parent that
    does not reap, as a container's first process may) is not."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


SLURM_CONF = """\
ClusterName=psweeptest
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={d_port}
SlurmUser={user}
SlurmdUser={user}
AuthType=auth/munge
AuthInfo=socket={dir}/munge.sock
CredType=cred/munge
StateSaveLocation={dir}/state
SlurmdSpoolDir={dir}/spool
SlurmctldPidFile={dir}/slurmctld.pid
SlurmdPidFile={dir}/slurmd.pid
SlurmctldLogFile={dir}/slurmctld.log
SlurmdLogFile={dir}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
MpiDefault=none
MinJobAge=300
SchedulerParameters=batch_sched_delay=0
NodeName=localhost NodeAddr=127.0.0.1 CPUs=2 State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
"""


def slurm_cluster(folder: Path) -> Iterator[dict[str, str]]:
    """A one-node SLURM cluster on 127.0.0.1; yields the environment its clients
    need (``SLURM_CONF``). Every daemon is stopped by its PID file afterwards."""
    programs = need("munged", "slurmctld", "slurmd", "sbatch", "sinfo", package="slurm-wlm munge")
    (folder / "state").mkdir(parents=True)
    (folder / "spool").mkdir()
    key = folder / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o400)
    conf = folder / "slurm.conf"
    conf.write_text(
        SLURM_CONF.format(
            dir=folder, user=getpass.getuser(), ctld_port=free_port(), d_port=free_port()
        )
    )
    env = {**os.environ, "SLURM_CONF": str(conf)}
    pid_files = [folder / "slurmd.pid", folder / "slurmctld.pid", folder / "munged.pid"]
    try:
        subprocess.run(
            [
                programs["munged"],
                "--force",
                f"--key-file={key}",
                f"--socket={folder}/munge.sock",
                f"--pid-file={folder}/munged.pid",
                f"--log-file={folder}/munged.log",
                f"--seed-file={folder}/munge.seed",
            ],
            check=True,
        )
        subprocess.run([programs["slurmctld"], "-f", str(conf)], check=True, env=env)
        subprocess.run(
            [programs["slurmd"], "-f", str(conf), "-N", "localhost"], check=True, env=env
        )

        def idle() -> bool:
            state = subprocess.run(
                [programs["sinfo"], "-h", "-o", "%t"], capture_output=True, text=True, env=env
            )
            return state.stdout.strip() == "idle"

        wait_until(idle, "the SLURM node was not idle")
        yield {"SLURM_CONF": str(conf)}
    finally:
        scancel = shutil.which("scancel")
        if scancel and conf.exists():
            subprocess.run([scancel, "--user", getpass.getuser()], env=env, capture_output=True)
        for pid_file in pid_files:
            stop_pid_file(pid_file)


def wait_for_job(job: str, env: dict[str, str], timeout: float = 300.0) -> None:
    """Wait until a SLURM job (all its array tasks) has left the queue."""

    def gone() -> bool:
        queue = subprocess.run(
            ["squeue", "-h", "-j", job], capture_output=True, text=True, env={**os.environ, **env}
        )
        return queue.returncode == 0 and not queue.stdout.strip()

    wait_until(gone, f"job {job} did not end", timeout)


SSHD_CONFIG = """\
Port {port}
ListenAddress 127.0.0.1
HostKey {dir}/host_key
PidFile {dir}/sshd.pid
AuthorizedKeysFile {dir}/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
AcceptEnv PYTHONPATH
"""

SSH_CONFIG = """\
Host psweep-test
  HostName 127.0.0.1
  Port {port}
  User {user}
  IdentityFile {dir}/user_key
  IdentitiesOnly yes
  StrictHostKeyChecking no
  UserKnownHostsFile {dir}/known_hosts
  LogLevel ERROR
  SetEnv PYTHONPATH={pythonpath}
"""


def sshd(folder: Path, binds: Sequence[tuple[Path, Path]] = ()) -> Iterator[Path]:
    """An sshd on 127.0.0.1 that lets this user in with a key made here; yields an
    ssh_config whose host ``psweep-test`` reaches it (with this PYTHONPATH: the code
    under test). Stopped by its PID file.

    ``binds``: (folder, mount point) pairs: sshd runs in a mount namespace of its own
    where each folder is bind-mounted at its mount point (as a compute node mounts
    the shared filesystem under another path); its sessions see that view."""
    programs = need("sshd", "ssh", "ssh-keygen", package="openssh-server")
    folder.mkdir(parents=True)
    for key in ("host_key", "user_key"):
        subprocess.run(
            [programs["ssh-keygen"], "-q", "-t", "ed25519", "-N", "", "-f", str(folder / key)],
            check=True,
        )
    shutil.copy(folder / "user_key.pub", folder / "authorized_keys")
    port = free_port()
    (folder / "sshd_config").write_text(SSHD_CONFIG.format(port=port, dir=folder))
    config = folder / "ssh_config"
    pythonpath = os.environ.get("PYTHONPATH", "")
    config.write_text(
        SSH_CONFIG.format(port=port, dir=folder, user=getpass.getuser(), pythonpath=pythonpath)
    )
    Path("/run/sshd").mkdir(exist_ok=True)  # its privilege separation folder
    try:
        command = [
            programs["sshd"],
            "-f",
            str(folder / "sshd_config"),
            "-E",
            str(folder / "sshd.log"),
        ]
        if binds:
            unshare = need("unshare", "mount", package="util-linux")
            mounts = " && ".join(
                f"{unshare['mount']} --bind {shlex.quote(str(a))} {shlex.quote(str(b))}"
                for a, b in binds
            )
            script = f"{mounts} && exec {shlex.join(command)}"
            command = [
                unshare["unshare"],
                "--mount",
                "--propagation",
                "private",
                "sh",
                "-c",
                script,
            ]
        subprocess.run(command, check=True)

        def answers() -> bool:
            done = subprocess.run(
                [programs["ssh"], "-F", str(config), "psweep-test", "true"], capture_output=True
            )
            return done.returncode == 0

        wait_until(answers, "sshd did not let the test's key in")
        yield config
    finally:
        stop_pid_file(folder / "sshd.pid")
