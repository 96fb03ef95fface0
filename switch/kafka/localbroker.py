"""A local single-node Apache Kafka broker (KRaft, combined mode) for development and tests.

No Docker here, so the broker runs from the Maven Central artifacts: `kafka-pom.xml`
resolves `org.apache.kafka:kafka_2.13` and a log4j2 backend once into a cache shared
by every home (default ~/.cache/switch-sim/kafka-<version>/libs). Each home has its own
run folder (`<home>/broker`): server.properties, log4j2.properties, the KRaft data,
broker.log and state.json (pid, ports). `start` is harmless when already running;
`stop` leaves no JVM behind.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from switch.errors import BrokerError
from switch.settings import DEFAULT_LOCAL_PORT, default_cache

KAFKA_VERSION = "4.3.1"
# Bump when kafka-pom.xml changes, so caches resolved from an older pom are refreshed.
POM_REVISION = 2
POM = Path(__file__).with_name("kafka-pom.xml")
DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"
HEAP = ("-Xms256m", "-Xmx512m")


def jvm_options(env: Mapping[str, str]) -> list[str]:
    """The broker JVM's options after the defaults (later ones win): SWITCH_BROKER_JVM_OPTS,
    split on spaces, e.g. "-Xmx1g"."""
    return env.get("SWITCH_BROKER_JVM_OPTS", "").split()
START_TIMEOUT_S = 90.0
# Brokers started by this process, kept so their Popen objects are reaped, not
# garbage-collected while running (which warns).
_children: dict[int, subprocess.Popen[bytes]] = {}
# Large enough for a 2 MiB request and for QIM replies carrying a dozen stored images.
MAX_MESSAGE_BYTES = 8 * 1024 * 1024

LOG4J2 = """\
status = warn
appender.console.type = Console
appender.console.name = STDOUT
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.stdout.ref = STDOUT
logger.kafka.name = kafka
logger.kafka.level = warn
logger.org.name = org.apache.kafka
logger.org.level = warn
logger.started.name = kafka.server.KafkaRaftServer
logger.started.level = info
"""


@dataclass(frozen=True)
class BrokerState:
    pid: int
    port: int
    controller_port: int
    run_dir: Path
    security: str = "PLAINTEXT"  # "SASL_SSL" when started secured

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"


def cache_dir() -> Path:
    return default_cache() / f"kafka-{KAFKA_VERSION}-r{POM_REVISION}"


def ensure_jars(progress: bool = True) -> Path:
    """Resolve the broker's jars into the shared cache once; return the libs folder."""
    libs = cache_dir() / "libs"
    marker = cache_dir() / ".complete"
    if marker.exists() and any(libs.glob("kafka_2.13-*.jar")):
        return libs
    mvn = shutil.which("mvn")
    if mvn is None:
        raise BrokerError(
            "Maven ('mvn') is not on PATH; it is needed once to fetch Apache Kafka from "
            "Maven Central. Install Maven 3.8+ or set KAFKA_BOOTSTRAP_SERVERS to a running broker."
        )
    cache_dir().mkdir(parents=True, exist_ok=True)
    pom = cache_dir() / "pom.xml"
    pom.write_text(POM.read_text().replace("${kafka.version}", KAFKA_VERSION, 1))
    if progress:
        print(f"switch: fetching Apache Kafka {KAFKA_VERSION} from Maven Central into {libs} ...",
              flush=True)
    tmp = cache_dir() / "libs.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    cmd = [
        mvn, "-q", "-B", "-f", str(pom),
        f"{DEPENDENCY_PLUGIN}:copy-dependencies",
        f"-DoutputDirectory={tmp}", "-DincludeScope=runtime",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-15:]
        raise BrokerError(
            "could not fetch Apache Kafka with Maven (is Maven Central reachable?):\n"
            + "\n".join(tail)
        )
    shutil.rmtree(libs, ignore_errors=True)
    tmp.rename(libs)
    marker.touch()
    return libs


def java_binary() -> str:
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").exists():
        return str(Path(home) / "bin" / "java")
    java = shutil.which("java")
    if java is None:
        raise BrokerError(
            "Java is not on PATH; the local Kafka broker needs Java 17 or newer "
            "(or set KAFKA_BOOTSTRAP_SERVERS to a running broker)."
        )
    return java


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pick_ports(preferred: int | None) -> tuple[int, int]:
    if preferred and _port_free(preferred) and _port_free(preferred + 1):
        return preferred, preferred + 1
    port = _free_port()
    cport = _free_port()
    while cport == port:
        cport = _free_port()
    return port, cport


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still answers kill(0); check its state.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return True


def _answers(port: int, timeout: float = 1.0) -> bool:
    """True when the broker answers a Kafka ApiVersions request on the port."""
    # ApiVersions v0: size, api_key=18, api_version=0, correlation_id=1, client_id="probe".
    client = b"probe"
    body = (18).to_bytes(2, "big") + (0).to_bytes(2, "big") + (1).to_bytes(4, "big")
    body += len(client).to_bytes(2, "big") + client
    msg = len(body).to_bytes(4, "big") + body
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(msg)
            head = s.recv(4)
            if len(head) < 4:
                return False
            resp = s.recv(8)
            # correlation id echoed, then error code 0.
            return len(resp) >= 6 and resp[:4] == (1).to_bytes(4, "big") and resp[4:6] == b"\0\0"
    except OSError:
        return False


class LocalBroker:
    """The local broker of one home. `start()`, `stop()`, `status()`."""

    def __init__(
        self, home: Path, *, preferred_port: int | None = DEFAULT_LOCAL_PORT,
        secure: bool | None = None, security_dir: Path | None = None,
    ) -> None:
        from switch.security.client import insecure
        from switch.security.client import security_dir as default_security_dir

        self.run_dir = Path(home) / "broker"
        self.preferred_port = preferred_port
        # Secured (SASL_SSL, SCRAM, ACLs) unless asked otherwise (--insecure, SWITCH_INSECURE).
        self.secure = (not insecure(os.environ)) if secure is None else secure
        self.security_dir = security_dir or default_security_dir(Path(home), os.environ)
        # The ports of the last broker this object stopped or killed: started again, it
        # listens there, so clients holding the old address reconnect to it.
        self._last_ports: tuple[int, int] | None = None

    @property
    def state_file(self) -> Path:
        return self.run_dir / "state.json"

    @property
    def log_file(self) -> Path:
        return self.run_dir / "broker.log"

    def status(self) -> BrokerState | None:
        """The running broker's state, or None when none runs for this home."""
        try:
            data = json.loads(self.state_file.read_text())
            state = BrokerState(
                pid=int(data["pid"]), port=int(data["port"]),
                controller_port=int(data["controller_port"]), run_dir=self.run_dir,
                security=str(data.get("security", "PLAINTEXT")),
            )
        except (OSError, ValueError, KeyError):
            return None
        if not _alive(state.pid):
            return None
        return state

    def start(self, *, timeout: float = START_TIMEOUT_S, progress: bool = True) -> BrokerState:
        running = self.status()
        if running is not None:
            self._check_mode(running)
            if self._wait_ready(running, None, timeout):
                return running
            raise BrokerError(
                f"a broker process ({running.pid}) is recorded in {self.run_dir} but does not "
                f"answer on port {running.port}; run `switch broker stop` and start again"
            )
        libs = ensure_jars(progress)
        java = java_binary()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        data_dir = self.run_dir / "data"
        port, cport = self._ports()
        props = self.run_dir / "server.properties"
        listeners = None
        scram: list[str] = []
        if self.secure:
            from switch.security import broker as secured

            self._check_data(data_dir)
            listeners = secured.listener_properties(port, cport, self.security_dir)
            scram = secured.format_args(self.security_dir)
        props.write_text(_server_properties(port, cport, data_dir, listeners))
        os.chmod(props, 0o600)  # holds the broker's own passwords when secured
        log4j = self.run_dir / "log4j2.properties"
        log4j.write_text(LOG4J2)
        cluster_id = self._cluster_id(data_dir)
        classpath = f"{libs}/*"
        jvm = [java, *HEAP, "-XX:+UseG1GC", *jvm_options(os.environ), "-Djava.awt.headless=true",
               f"-Dlog4j2.configurationFile={log4j}", "-cp", classpath]
        fmt = subprocess.run(
            [*jvm, "kafka.tools.StorageTool", "format", f"--cluster-id={cluster_id}", "-c", str(props),
             "--ignore-formatted", *scram],
            capture_output=True, text=True,
        )
        if fmt.returncode != 0:
            raise BrokerError(
                "formatting the broker's storage failed: "
                + (fmt.stderr or fmt.stdout).strip()[-800:]
            )
        log = open(self.log_file, "ab")  # noqa: SIM115 - handed to the child process
        try:
            proc = subprocess.Popen(
                [*jvm, "kafka.Kafka", str(props)],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        finally:
            log.close()
        _children[proc.pid] = proc
        security = "SASL_SSL" if self.secure else "PLAINTEXT"
        state = BrokerState(pid=proc.pid, port=port, controller_port=cport, run_dir=self.run_dir,
                            security=security)
        self.state_file.write_text(json.dumps(
            {"pid": proc.pid, "port": port, "controller_port": cport, "started": time.time(),
             "security": security, "security_dir": str(self.security_dir) if self.secure else None}
        ))
        if not self._wait_ready(state, proc, timeout):
            self.stop()
            raise BrokerError(
                f"the broker did not answer on 127.0.0.1:{port} within {timeout:.0f} s; "
                f"last lines of {self.log_file}:\n{self._log_tail()}"
            )
        if self.secure:
            self._bootstrap_acls(state, data_dir)
        return state

    def _check_mode(self, running: BrokerState) -> None:
        """A running broker of another mode (or of an older version, which ran plaintext)
        is not silently used: one line saying what to do."""
        if self.secure and running.security != "SASL_SSL":
            raise BrokerError(
                f"the broker running for {self.run_dir.parent} (pid {running.pid}, port "
                f"{running.port}) is plaintext: started by an older version of switch-sim or "
                "with --insecure; stop it with `switch broker stop` and start it again, or "
                "use --insecure (SWITCH_INSECURE=1) to keep it")
        if not self.secure and running.security != "PLAINTEXT":
            raise BrokerError(
                f"the broker running for {self.run_dir.parent} (pid {running.pid}) is secured "
                "(SASL_SSL); drop --insecure / SWITCH_INSECURE to use it, or stop it with "
                "`switch broker stop` first")

    def _check_data(self, data_dir: Path) -> None:
        """Data formatted without the SCRAM users (an older version, or --insecure) cannot
        be secured in place: users are created when the storage is formatted."""
        marker = self.run_dir / "secured"
        if (data_dir / "meta.properties").exists():
            if not marker.exists():
                raise BrokerError(
                    f"the broker data in {data_dir} was made without users (by an older "
                    "version or with --insecure); start with --insecure to keep using it, "
                    f"or remove {data_dir} (its topics are lost) to start it secured")
            if marker.read_text().strip() != str(self.security_dir):
                raise BrokerError(
                    f"the broker data in {data_dir} was secured with the credentials of "
                    f"{marker.read_text().strip()}, not {self.security_dir}; set "
                    "SWITCH_SECURITY_DIR to that folder, or remove the data to start afresh")
            return
        (self.run_dir / "acls-applied").unlink(missing_ok=True)
        marker.write_text(str(self.security_dir))

    def _bootstrap_acls(self, state: BrokerState, data_dir: Path) -> None:
        """The components' and operator's ACLs, once per formatted storage."""
        from switch.security import broker as secured

        done = self.run_dir / "acls-applied"
        if done.exists():
            return
        try:
            secured.apply_trusted_acls(state.bootstrap, self.security_dir)
        except Exception as exc:
            self.stop()
            raise BrokerError(f"could not create the switch's ACLs on the new broker: {exc}") \
                from None
        done.touch()

    def _recorded_pid(self) -> int | None:
        """The JVM's pid from the run folder's state (its ports remembered for a restart
        on the same ones); None when no broker was recorded."""
        try:
            data = json.loads(self.state_file.read_text())
            pid = int(data["pid"])
        except (OSError, ValueError, KeyError):
            return None
        self._remember_ports(data)
        return pid

    def stop(self, timeout: float = 30.0) -> bool:
        """Stop the broker; True if one was running. Never leaves the JVM behind."""
        pid = self._recorded_pid()
        if pid is None:
            return False
        was_running = _alive(pid)
        if was_running:
            _signal_group(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while _alive(pid) and time.monotonic() < deadline:
                _reap(pid)
                time.sleep(0.1)
            if _alive(pid):
                _signal_group(pid, signal.SIGKILL)
                while _alive(pid):
                    _reap(pid)
                    time.sleep(0.05)
        _reap(pid)
        self.state_file.unlink(missing_ok=True)
        return was_running

    def kill(self) -> bool:
        """`kill -9` the broker's JVM (no clean shutdown: the data dir is left as a crash
        leaves it); True if one was running. `start()` then recovers it on the same ports."""
        pid = self._recorded_pid()
        if pid is None:
            return False
        was_running = _alive(pid)
        _signal_group(pid, signal.SIGKILL)
        while _alive(pid):
            _reap(pid)
            time.sleep(0.05)
        _reap(pid)
        self.state_file.unlink(missing_ok=True)
        return was_running

    # ------------------------------------------------------------------ internals

    def _remember_ports(self, data: dict[str, object]) -> None:
        try:
            self._last_ports = (int(str(data["port"])), int(str(data["controller_port"])))
        except (KeyError, ValueError):
            pass

    def _ports(self) -> tuple[int, int]:
        if self._last_ports is not None:
            port, cport = self._last_ports
            deadline = time.monotonic() + 30.0  # a killed JVM's sockets take a moment to go
            while time.monotonic() < deadline:
                if _port_free(port) and _port_free(cport):
                    return port, cport
                time.sleep(0.2)
        return _pick_ports(self.preferred_port)

    def _cluster_id(self, data_dir: Path) -> str:
        meta = data_dir / "meta.properties"
        if meta.exists():
            for line in meta.read_text().splitlines():
                if line.startswith("cluster.id="):
                    return line.split("=", 1)[1].strip()
        return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")

    def _wait_ready(
        self, state: BrokerState, proc: subprocess.Popen[bytes] | None, timeout: float
    ) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                self.state_file.unlink(missing_ok=True)
                raise BrokerError(
                    f"the broker's JVM exited with status {proc.returncode} during start-up; "
                    f"last lines of {self.log_file}:\n{self._log_tail()}"
                )
            if proc is None and not _alive(state.pid):
                return False
            if self._answers(state.port):
                return True
            time.sleep(0.2)
        return False

    def _answers(self, port: int) -> bool:
        if self.secure:
            from switch.security.broker import answers_tls
            from switch.security.pki import paths

            return answers_tls(port, paths(self.security_dir).ca_cert)
        return _answers(port)

    def _log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def _signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def _reap(pid: int) -> None:
    child = _children.get(pid)
    if child is not None:
        if child.poll() is not None:
            del _children[pid]
        return
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _server_properties(port: int, cport: int, data_dir: Path, listeners: str | None = None) -> str:
    listeners = listeners or f"""\
listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{cport}
advertised.listeners=PLAINTEXT://127.0.0.1:{port}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
"""
    return f"""\
# Written by switch/kafka/localbroker.py: one KRaft node, broker and controller in one JVM.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:{cport}
{listeners}log.dirs={data_dir}
num.partitions=3
num.network.threads=2
num.io.threads=4
offsets.topic.replication.factor=1
offsets.topic.num.partitions=3
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=3
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
message.max.bytes={MAX_MESSAGE_BYTES}
replica.fetch.max.bytes={MAX_MESSAGE_BYTES}
log.cleaner.dedupe.buffer.size=16777216
transaction.max.timeout.ms=900000
"""
