"""The playground page of an endpoint run by the control plane (issue 16: "served by `lmstream
serve` and by the control plane, one per endpoint"): a TGI endpoint is created with boto3's
`sagemaker` client against a real `lmstream control-plane`, and a real headless Chromium opens
GET /endpoints/{name}/ui on the control plane's port. The page answers through each API (TGI,
OpenAI, the SageMaker event stream), all through the control plane to the endpoint's worker;
every request the page makes stays below /endpoints/{name}/; no console errors; an unknown
endpoint's page is a clear 400; the SageMaker error shape is unchanged for unknown operations."""
import json
import sys
import urllib.error
import urllib.parse
import urllib.request

import lmstest
from lmstest.browser import Browser
from lmstest.control import ROLE, TGI_IMAGE, ControlPlane
from lmstest.playground import ask, set_field

failures = []


def check(cond, msg):
    print(("ok   " if cond else "FAIL ") + msg, flush=True)
    if not cond:
        failures.append(msg)


def get(url):
    try:
        with urllib.request.urlopen(urllib.request.Request(url), timeout=30) as r:
            return r.status, dict(r.getheaders()), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def main():
    model = lmstest.cached_model("gguf", "small", "q8_0", tokenizer=True)
    name = "playground-ep"
    with ControlPlane(["--wait-for-in-service"]) as cp:
        sm = cp.sm()
        sm.create_model(ModelName="pg-model", ExecutionRoleArn=ROLE,
                        PrimaryContainer={"Image": TGI_IMAGE, "Environment": {"HF_MODEL_ID": model}})
        sm.create_endpoint_config(EndpointConfigName="pg-config", ProductionVariants=[{
            "VariantName": "AllTraffic", "ModelName": "pg-model", "InstanceType": "ml.g5.2xlarge",
            "InitialInstanceCount": 1}])
        sm.create_endpoint(EndpointName=name, EndpointConfigName="pg-config")
        status = sm.describe_endpoint(EndpointName=name)["EndpointStatus"]
        check(status == "InService", "endpoint InService: " + status)

        base = "%s/endpoints/%s" % (cp.url, name)
        st, h, body = get(base + "/ui")
        csp = h.get("Content-Security-Policy", "")
        check(st == 200 and b'src="ui/app.js"' in body and "default-src 'none'" in csp,
              "GET /endpoints/{name}/ui is the page, with its CSP (%s)" % st)
        st, h, _ = get(base + "/ui/app.js")
        check(st == 200 and h.get("Content-Type", "").startswith("text/javascript"), "the page's script below the prefix")
        st, h, body = get(cp.url + "/endpoints/no-such-endpoint/ui")
        check(st == 400 and b"no-such-endpoint" in body, "an unknown endpoint's page: 400 naming it (%s %s)" % (st, body[:200]))
        st, h, body = get(base + "/nothing-here")
        check(st == 404 and h.get("x-amzn-ErrorType") == "UnknownOperationException" and b"/ui" in body,
              "an unknown GET below an endpoint: 404 in the AWS shape, naming the routes (%s %s)" % (st, body[:200]))

        with Browser(1400, 1100) as b:
            b.logs("performance")
            b.get(base + "/ui")
            b.wait("return /endpoint/.test(document.getElementById('model').textContent)", timeout=30, what="/info through the control plane")
            b.wait("return document.getElementById('srv-kv').textContent !== '–'", what="the server panel from the worker's /metrics")
            set_field(b, "#max_new_tokens", "24")
            for api in ("tgi", "openai", "sagemaker"):
                set_field(b, "#api", api)
                b.click("#clear")
                a = ask(b, "Write one line about streaming.")
                check(a["state"] == "done" and a["tokens"] > 0 and not a["error"],
                      "%s through the control plane: %s, %d tokens %s" % (api, a["state"], a["tokens"], a["error"]))
            errors = [e for e in b.logs("browser") if e["level"] == "SEVERE"]
            check(not errors, "no console errors: %s" % errors)
            paths = set()
            for entry in b.logs("performance"):
                m = json.loads(entry["message"])["message"]
                if m.get("method") == "Network.requestWillBeSent" and not m["params"].get("documentURL", "").startswith("chrome://"):
                    u = urllib.parse.urlsplit(m["params"]["request"]["url"])
                    paths.add((u.netloc, u.path))
            outside = sorted(p for p in paths if p[0] != urllib.parse.urlsplit(cp.url).netloc
                             or not p[1].startswith("/endpoints/%s/" % name))
            check(paths and not outside, "every request of the page stays below /endpoints/%s/ (%d paths; outside: %s)"
                  % (name, len(paths), outside))
        sm.delete_endpoint(EndpointName=name)
    if failures:
        print("FAILED: %d check(s)" % len(failures))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
