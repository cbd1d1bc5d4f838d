#!/usr/bin/env python3
"""Static checks of deploy/: the Kubernetes manifests and the Dockerfile.

Nothing here talks to a cluster or a Docker daemon (neither exists where the tests run); it
checks what a wrong edit would silently break: probes pointed at the wrong path or port, a
writable model volume, GPU limits that disagree with `mpirun -np` and --tensor-parallel-size x
--pipeline-parallel-size, an API key on the command line, a Dockerfile stage that no longer
copies the binary. hadolint is not packaged for Debian, so the Dockerfile check is a small
parser of its own.

  check_deploy.py manifests DEPLOY_K8S_DIR
  check_deploy.py dockerfile DEPLOY_DIR/Dockerfile
  check_deploy.py selftest DEPLOY_DIR    (each known mistake, injected, is caught)

Exit 0: all good; 1: findings (one line each); 77: PyYAML missing (ctest SKIP_RETURN_CODE).
"""
import copy
import os
import re
import shlex
import sys

try:
    import yaml
except ImportError:  # CI installs python3-yaml (deploy/apt-packages.txt)
    print("check_deploy: PyYAML (python3-yaml) not installed; skipping")
    sys.exit(77)

HTTP_PORT = 8000
MODEL_MOUNT = "/models"

# What each manifest must ask for: GPUs per pod, pods per replica (LWS size), world size.
EXPECTED = {
    "herd-1gpu.yaml": {"gpus_per_pod": 1, "pods": 1, "world": 1},
    "herd-8gpu.yaml": {"gpus_per_pod": 8, "pods": 1, "world": 8},
    "herd-405b-lws.yaml": {"gpus_per_pod": 8, "pods": 2, "world": 16, "tp": 8, "pp": 2},
}


def flag_value(words, name):
    """Value of --name VALUE or --name=VALUE in a word list, else None."""
    for i, w in enumerate(words):
        if w == name and i + 1 < len(words):
            return words[i + 1]
        if w.startswith(name + "="):
            return w[len(name) + 1:]
    return None


def command_words(container):
    """The container's command + args as shell words (a `sh -c` script is split too)."""
    parts = list(container.get("command") or []) + list(container.get("args") or [])
    text = " ".join(str(p) for p in parts)
    # A shell script's line continuations and comments are not words of the command.
    text = re.sub(r"\\\n", " ", text)
    text = "\n".join(line.split(" # ")[0] for line in text.splitlines()
                     if not line.strip().startswith("#"))
    try:
        return shlex.split(text, posix=True)
    except ValueError:
        return text.split()


def gpu_limit(container):
    limits = (container.get("resources") or {}).get("limits") or {}
    v = limits.get("nvidia.com/gpu")
    return int(v) if v is not None else 0


def check_pod(where, spec, pods_in_group, expect, findings, serving_expected):
    volumes = {v.get("name"): v for v in spec.get("volumes") or []}
    containers = spec.get("containers") or []
    if not containers:
        findings.append(f"{where}: no containers")
    for c in containers:
        cw = f"{where} container {c.get('name')}"
        image = c.get("image")
        if not image:
            findings.append(f"{cw}: no image")
        elif image.endswith(":latest") or ":" not in image.rsplit("/", 1)[-1]:
            findings.append(f"{cw}: image '{image}' has no pinned tag")
        # The model volume: mounted read-only, and read-only at the source too.
        mounts = {m.get("name"): m for m in c.get("volumeMounts") or []}
        model = [m for m in mounts.values() if m.get("mountPath") == MODEL_MOUNT]
        if not model:
            findings.append(f"{cw}: no volume mounted at {MODEL_MOUNT}")
        for m in model:
            if m.get("readOnly") is not True:
                findings.append(f"{cw}: model mount {m.get('name')} is not readOnly")
            v = volumes.get(m.get("name"))
            if v is None:
                findings.append(f"{cw}: mount {m.get('name')} has no volume")
            elif "persistentVolumeClaim" in v:
                if v["persistentVolumeClaim"].get("readOnly") is not True:
                    findings.append(f"{cw}: model PVC volume is not readOnly")
            elif "hostPath" not in v:
                findings.append(f"{cw}: model volume is neither a PVC nor a hostPath")
        gpus = gpu_limit(c)
        if gpus != expect["gpus_per_pod"]:
            findings.append(f"{cw}: nvidia.com/gpu limit {gpus}, expected {expect['gpus_per_pod']}")
        if gpus > 1:
            shm = [m for m in mounts.values() if m.get("mountPath") == "/dev/shm"]
            v = volumes.get(shm[0].get("name")) if shm else None
            if not v or (v.get("emptyDir") or {}).get("medium") != "Memory":
                findings.append(f"{cw}: {gpus} GPUs but no /dev/shm emptyDir (medium Memory) "
                                "for NCCL")
        words = command_words(c)
        image_entrypoint_herd = not c.get("command")  # the image's ENTRYPOINT is herd
        serves = ("serve" in words and ("herd" in words or image_entrypoint_herd))
        if serving_expected and not serves:
            findings.append(f"{cw}: does not run `herd serve`")
        if not serves:
            continue
        # mpirun's words come before `serve`, herd serve's after (both have a --host).
        launcher, words = words[:words.index("serve")], words[words.index("serve") + 1:]
        # Serving container: reachable, probed on /health, key from a Secret.
        if flag_value(words, "--host") != "0.0.0.0":
            findings.append(f"{cw}: herd serve without --host 0.0.0.0 is unreachable from "
                            "outside the pod")
        port = int(flag_value(words, "--port") or 8000)
        if port != HTTP_PORT:
            findings.append(f"{cw}: --port {port}, expected {HTTP_PORT}")
        named = {p.get("name"): p.get("containerPort") for p in c.get("ports") or []}
        if named.get("http") != HTTP_PORT:
            findings.append(f"{cw}: no containerPort {HTTP_PORT} named http")
        for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
            p = c.get(probe)
            if p is None:
                if probe != "startupProbe":
                    findings.append(f"{cw}: no {probe}")
                continue
            get = p.get("httpGet") or {}
            if get.get("path") != "/health":
                findings.append(f"{cw}: {probe} path {get.get('path')!r}, expected /health")
            pport = named.get(get.get("port"), get.get("port"))
            if pport != port:
                findings.append(f"{cw}: {probe} port {get.get('port')!r} is not the server's "
                                f"{port}")
        if "--api-key" in words or any(w.startswith("--api-key=") for w in words):
            findings.append(f"{cw}: API key on the command line (use HERD_API_KEY from a Secret)")
        env = {e.get("name"): e for e in c.get("env") or []}
        key = env.get("HERD_API_KEY")
        if key is None or "secretKeyRef" not in (key.get("valueFrom") or {}):
            findings.append(f"{cw}: HERD_API_KEY does not come from a Secret")
        # World size: mpirun -np = tp x pp = GPUs over the group; without mpirun, one GPU.
        tp = int(flag_value(words, "--tensor-parallel-size") or 1)
        pp = int(flag_value(words, "--pipeline-parallel-size") or 1)
        if "mpirun" in launcher:
            np_ = flag_value(launcher, "-np")
            if np_ is None or not np_.isdigit():
                findings.append(f"{cw}: mpirun without a numeric -np")
                np_ = "0"
            if int(np_) != tp * pp:
                findings.append(f"{cw}: mpirun -np {np_} but --tensor-parallel-size {tp} x "
                                f"--pipeline-parallel-size {pp} = {tp * pp}")
            if int(np_) != gpus * pods_in_group:
                findings.append(f"{cw}: mpirun -np {np_} but {pods_in_group} pod(s) x {gpus} "
                                "GPUs")
            hosts = flag_value(launcher, "--host")
            if pods_in_group > 1:
                slots = [h.rsplit(":", 1)[-1] for h in (hosts or "").split(",")]
                if (not hosts or len(slots) != pods_in_group
                        or any(not s.isdigit() or int(s) != gpus for s in slots)):
                    findings.append(f"{cw}: mpirun --host {hosts!r} is not {pods_in_group} "
                                    f"hosts x {gpus} slots")
                if flag_value(launcher, "plm_rsh_agent") is None:
                    findings.append(f"{cw}: two pods but no remote launcher "
                                    "(--mca plm_rsh_agent)")
        elif tp * pp != 1:
            findings.append(f"{cw}: tp x pp = {tp * pp} without mpirun")
        if "tp" in expect and (tp, pp) != (expect["tp"], expect["pp"]):
            findings.append(f"{cw}: tp {tp} pp {pp}, expected {expect['tp']} x {expect['pp']}")
        if expect["world"] != tp * pp:
            findings.append(f"{cw}: world size {tp * pp}, expected {expect['world']}")


NCCL_ENV = ("NCCL_SOCKET_IFNAME", "NCCL_IB_HCA", "NCCL_DEBUG")


def check_docs(name, docs, findings):
    expect = EXPECTED.get(name)
    kinds = [d.get("kind") for d in docs if d]
    if expect is None:
        findings.append(f"{name}: not a known manifest (add it to EXPECTED in {__file__})")
        return
    services = [d for d in docs if d and d.get("kind") == "Service"]
    if not services:
        findings.append(f"{name}: no Service")
    for d in docs:
        if not d:
            continue
        kind = d.get("kind")
        where = f"{name} {kind}/{d.get('metadata', {}).get('name')}"
        if kind == "Deployment":
            check_pod(where, d["spec"]["template"]["spec"], 1, expect, findings, True)
        elif kind == "LeaderWorkerSet":
            if d.get("apiVersion") != "leaderworkerset.x-k8s.io/v1":
                findings.append(f"{where}: apiVersion {d.get('apiVersion')}")
            t = d["spec"]["leaderWorkerTemplate"]
            if t.get("size") != expect["pods"]:
                findings.append(f"{where}: size {t.get('size')}, expected {expect['pods']}")
            check_pod(where + " leader", t["leaderTemplate"]["spec"], t.get("size", 1), expect,
                      findings, True)
            check_pod(where + " worker", t["workerTemplate"]["spec"], t.get("size", 1), expect,
                      findings, False)
            for role in ("leaderTemplate", "workerTemplate"):
                for c in t[role]["spec"].get("containers") or []:
                    have = {e.get("name") for e in c.get("env") or []}
                    for n in NCCL_ENV:
                        if n not in have:
                            findings.append(f"{where} {role}: {n} not set")
        elif kind == "Service":
            for p in d["spec"].get("ports") or []:
                if p.get("name") == "http" and p.get("port") != HTTP_PORT:
                    findings.append(f"{where}: http port {p.get('port')}")
    if "Deployment" not in kinds and "LeaderWorkerSet" not in kinds:
        findings.append(f"{name}: neither a Deployment nor a LeaderWorkerSet")


def check_manifests(k8s_dir, loaded=None):
    """loaded: {file name: [docs]} to check instead of reading k8s_dir (selftest)."""
    findings = []
    if loaded is None:
        loaded = {}
        for f in sorted(os.listdir(k8s_dir)):
            if f.endswith((".yaml", ".yml")):
                with open(os.path.join(k8s_dir, f)) as fh:
                    try:
                        loaded[f] = list(yaml.safe_load_all(fh))
                    except yaml.YAMLError as e:
                        findings.append(f"{f}: not YAML: {e}")
    kust = loaded.pop("kustomization.yaml", None)
    if kust is not None:
        for r in (kust[0] or {}).get("resources") or []:
            if r not in loaded:
                findings.append(f"kustomization.yaml: resource {r} missing")
    for name in EXPECTED:
        if name not in loaded:
            findings.append(f"{name}: missing")
    for name, docs in loaded.items():
        check_docs(name, docs, findings)
    return findings


def dockerfile_instructions(text):
    """[(INSTRUCTION, arguments)] with continuations joined and comments dropped."""
    out, cur = [], ""
    for line in text.splitlines():
        s = line.strip()
        if not cur and (not s or s.startswith("#")):
            continue
        if cur and s.startswith("#"):
            continue  # a comment line inside a continued instruction
        if s.endswith("\\"):
            cur += s[:-1] + " "
            continue
        cur += s
        word, _, rest = cur.partition(" ")
        out.append((word.upper(), rest.strip()))
        cur = ""
    if cur:
        word, _, rest = cur.partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


def check_dockerfile(path, text=None, context_dir=None):
    findings = []
    if text is None:
        with open(path) as fh:
            text = fh.read()
    context_dir = context_dir or os.path.dirname(os.path.dirname(os.path.abspath(path)))
    ins = dockerfile_instructions(text)
    stages = []  # [{name, instrs}]
    for word, args in ins:
        if word == "FROM":
            m = re.match(r"(\S+)(?:\s+AS\s+(\S+))?", args, re.I)
            stages.append({"image": m.group(1), "name": m.group(2), "instrs": []})
        elif word == "ARG" and not stages:
            continue  # ARGs before the first FROM parameterize the FROMs
        elif not stages:
            findings.append(f"{path}: {word} before any FROM")
        else:
            stages[-1]["instrs"].append((word, args))
    if len(stages) < 2:
        findings.append(f"{path}: {len(stages)} stage(s); expected a build and a runtime stage")
        return findings
    names = [s["name"] for s in stages]
    for s in stages:
        if not s["image"] or s["image"].endswith(":latest"):
            findings.append(f"{path}: stage {s['name']} FROM {s['image']!r} is not pinned")
        for word, args in s["instrs"]:
            if word == "ADD" and re.search(r"\b(https?|ftp)://", args):
                findings.append(f"{path}: ADD of a URL ({args}): fetch with a checked download")
            if word == "COPY" and "--from=" not in args:
                srcs = [a for a in shlex.split(args) if not a.startswith("--")][:-1]
                for src in srcs:
                    if src != "." and not os.path.exists(os.path.join(context_dir, src)):
                        findings.append(f"{path}: COPY source {src} is not in the context")
    build = stages[0]
    if not any(w == "RUN" and "--target herd" in a for w, a in build["instrs"]):
        findings.append(f"{path}: the first stage does not build the herd target")
    if not any(w == "RUN" and "--preset cuda" in a for w, a in build["instrs"]):
        findings.append(f"{path}: the first stage does not configure the cuda preset")
    rt = stages[-1]
    words = [w for w, _ in rt["instrs"]]
    copies_binary = any(
        w == "COPY" and re.search(r"--from=(\S+)", a) and re.search(r"\bherd\s+\S*bin", a)
        for w, a in rt["instrs"])
    if not copies_binary:
        findings.append(f"{path}: the runtime stage does not COPY --from a build stage the herd "
                        "binary into a bin directory")
    for w, a in rt["instrs"]:
        m = re.search(r"--from=(\S+)", a) if w == "COPY" else None
        if m and m.group(1) not in names:
            findings.append(f"{path}: COPY --from={m.group(1)} names no stage")
    expose = " ".join(a for w, a in rt["instrs"] if w == "EXPOSE").split()
    if str(HTTP_PORT) not in [p.split("/")[0] for p in expose]:
        findings.append(f"{path}: runtime stage does not EXPOSE {HTTP_PORT}")
    hc = [a for w, a in rt["instrs"] if w == "HEALTHCHECK"]
    if not hc or "/health" not in hc[0] or f":{HTTP_PORT}" not in hc[0]:
        findings.append(f"{path}: no HEALTHCHECK on /health port {HTTP_PORT}")
    users = [a for w, a in rt["instrs"] if w == "USER"]
    if not users or users[-1].split(":")[0] in ("root", "0"):
        findings.append(f"{path}: runtime stage runs as root (no USER)")
    if "ENTRYPOINT" not in words or "herd" not in [a for w, a in rt["instrs"]
                                                   if w == "ENTRYPOINT"][0]:
        findings.append(f"{path}: runtime ENTRYPOINT is not herd")
    ignore = os.path.join(os.path.dirname(path), os.path.basename(path) + ".dockerignore")
    if os.path.exists(path) and not os.path.exists(ignore):
        findings.append(f"{path}: no {os.path.basename(ignore)}")
    elif os.path.exists(ignore):
        with open(ignore) as fh:
            pats = [l.strip() for l in fh if l.strip() and not l.startswith("#")]
        for needed in ("CMakeLists.txt", "engine/", "cli/", "deploy/", "kernels/", "server/"):
            if needed in pats or needed.rstrip("/") in pats:
                findings.append(f"{ignore}: excludes {needed}, which the build needs")
    return findings


def selftest(deploy_dir):
    """Each known mistake, injected into the good files, must be reported."""
    k8s = os.path.join(deploy_dir, "k8s")
    good = {}
    for f in sorted(os.listdir(k8s)):
        if f.endswith(".yaml"):
            with open(os.path.join(k8s, f)) as fh:
                good[f] = list(yaml.safe_load_all(fh))
    failures = []
    base = check_manifests(k8s, copy.deepcopy(good))
    if base:
        failures.append(f"the good manifests have findings: {base}")

    def dep(docs):
        return next(d for d in docs if d and d.get("kind") == "Deployment")

    def lws(docs):
        return next(d for d in docs if d and d.get("kind") == "LeaderWorkerSet")

    def c0(spec):
        return spec["containers"][0]

    def drop_readonly(m):
        for v in c0(dep(m["herd-1gpu.yaml"])["spec"]["template"]["spec"])["volumeMounts"]:
            v["readOnly"] = False

    def wrong_probe_port(m):
        c0(dep(m["herd-1gpu.yaml"])["spec"]["template"]["spec"])["readinessProbe"]["httpGet"][
            "port"] = 9000

    def wrong_probe_path(m):
        c0(dep(m["herd-8gpu.yaml"])["spec"]["template"]["spec"])["livenessProbe"]["httpGet"][
            "path"] = "/healthz"

    def np_mismatch(m):
        c = c0(dep(m["herd-8gpu.yaml"])["spec"]["template"]["spec"])
        c["args"][c["args"].index("-np") + 1] = "4"

    def lws_np_mismatch(m):
        c = c0(lws(m["herd-405b-lws.yaml"])["spec"]["leaderWorkerTemplate"]["leaderTemplate"]
               ["spec"])
        c["args"][0] = c["args"][0].replace("-np 16", "-np 8")

    def lws_size(m):
        lws(m["herd-405b-lws.yaml"])["spec"]["leaderWorkerTemplate"]["size"] = 3

    def worker_gpus(m):
        c = c0(lws(m["herd-405b-lws.yaml"])["spec"]["leaderWorkerTemplate"]["workerTemplate"]
               ["spec"])
        c["resources"]["limits"]["nvidia.com/gpu"] = 4

    def no_image(m):
        del c0(dep(m["herd-1gpu.yaml"])["spec"]["template"]["spec"])["image"]

    def key_on_cmdline(m):
        c0(dep(m["herd-1gpu.yaml"])["spec"]["template"]["spec"])["args"].append("--api-key=x")

    def pvc_writable(m):
        spec = lws(m["herd-405b-lws.yaml"])["spec"]["leaderWorkerTemplate"]["workerTemplate"][
            "spec"]
        spec["volumes"][0]["persistentVolumeClaim"]["readOnly"] = False

    def no_nccl(m):
        c = c0(lws(m["herd-405b-lws.yaml"])["spec"]["leaderWorkerTemplate"]["leaderTemplate"]
               ["spec"])
        c["env"] = [e for e in c["env"] if e["name"] != "NCCL_SOCKET_IFNAME"]

    for mutate in (drop_readonly, wrong_probe_port, wrong_probe_path, np_mismatch,
                   lws_np_mismatch, lws_size, worker_gpus, no_image, key_on_cmdline,
                   pvc_writable, no_nccl):
        m = copy.deepcopy(good)
        mutate(m)
        if not check_manifests(k8s, m):
            failures.append(f"manifest mistake not caught: {mutate.__name__}")

    dockerfile = os.path.join(deploy_dir, "Dockerfile")
    with open(dockerfile) as fh:
        text = fh.read()
    ctx = os.path.dirname(os.path.abspath(deploy_dir))
    if check_dockerfile(dockerfile, text, ctx):
        failures.append(f"the good Dockerfile has findings: {check_dockerfile(dockerfile)}")
    docker_mutations = {
        "add_url": text + "\nADD https://example.com/x.tar.gz /x\n",
        "no_expose": re.sub(r"(?m)^EXPOSE .*$", "", text),
        "no_healthcheck": re.sub(r"(?m)^HEALTHCHECK .*\n.*$", "", text),
        "no_binary": re.sub(r"(?m)^COPY --from=build /out/herd .*$", "", text),
        "root": re.sub(r"(?m)^USER .*$", "", text),
        "one_stage": text[:text.index("\nFROM ", text.index("\nFROM ") + 1)],
    }
    for name, t in docker_mutations.items():
        if t == text:
            failures.append(f"Dockerfile mutation {name} changed nothing (pattern out of date)")
        elif not check_dockerfile(dockerfile, t, ctx):
            failures.append(f"Dockerfile mistake not caught: {name}")
    return failures


def main(argv):
    if len(argv) != 3 or argv[1] not in ("manifests", "dockerfile", "selftest"):
        print(__doc__, file=sys.stderr)
        return 2
    mode, path = argv[1], argv[2]
    if mode == "manifests":
        findings = check_manifests(path)
    elif mode == "dockerfile":
        findings = check_dockerfile(path)
    else:
        findings = selftest(path)
    for f in findings:
        print(f)
    print(f"check_deploy {mode}: {'ok' if not findings else f'{len(findings)} finding(s)'}")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
