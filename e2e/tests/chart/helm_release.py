"""One step of the trainloop release's life, with the real Helm library (helm-sdkpy, Helm v4).

usage: helm_release.py KUBECONFIG CHART_DIR NAMESPACE (install|upgrade|uninstall) < VALUES_JSON
install and upgrade wait until the release's objects are ready (the operator's pods Ready),
then print the release as one JSON line; uninstall waits until its objects are gone. Exits
non-zero with Helm's error. The Rust test judges the output; this script only reports.
"""

import asyncio
import json
import sys

import helm_sdkpy as helm

RELEASE = "trainloop"
TIMEOUT_SECONDS = 180


async def main(kubeconfig: str, chart: str, namespace: str, action: str) -> None:
    values = json.load(sys.stdin)
    config = helm.Configuration(namespace=namespace, kubeconfig=kubeconfig)
    if action == "install":
        release = await helm.Install(config).run(
            RELEASE, chart, values=values, create_namespace=True, wait=True, timeout=TIMEOUT_SECONDS
        )
    elif action == "upgrade":
        release = await helm.Upgrade(config).run(RELEASE, chart, values=values, wait=True, timeout=TIMEOUT_SECONDS)
    elif action == "uninstall":
        release = await helm.Uninstall(config).run(RELEASE, wait=True, timeout=TIMEOUT_SECONDS)
    else:
        raise SystemExit(f"unknown action {action!r}")
    print(json.dumps(release, default=str), flush=True)


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
