"""Drives the real Helm library (helm-sdkpy, Helm v4 inside) over the trainloop chart.

usage: helm_chart.py KUBECONFIG CHART_DIR < CASES_JSON
CASES_JSON is a list of {"case", "namespace", "values"}. Lints the chart, then installs each case
as release "trainloop" without waiting for pods, prints one JSON line with the objects Helm
created (or the error that refused the values) and uninstalls it again. The Rust test judges
the output; this script only reports.
"""

import asyncio
import json
import sys

import helm_sdkpy as helm

RELEASE = "trainloop"


def report(line):
    print(json.dumps(line, default=str), flush=True)


async def main(kubeconfig: str, chart: str) -> None:
    cases = json.load(sys.stdin)
    report({"lint": await helm.Lint(helm.Configuration(namespace="default", kubeconfig=kubeconfig)).run(chart)})
    for case in cases:
        config = helm.Configuration(namespace=case["namespace"], kubeconfig=kubeconfig)
        try:
            release = await helm.Install(config).run(
                RELEASE, chart, values=case["values"], create_namespace=True, wait=False, timeout=60
            )
        except helm.HelmError as error:
            report({"case": case["case"], "error": str(error)})
            continue
        report({"case": case["case"], "manifest": release.get("manifest", ""), "release": release})
        await helm.Uninstall(config).run(RELEASE, wait=True, timeout=60)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
