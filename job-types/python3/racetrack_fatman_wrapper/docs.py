"""OpenAPI 3 document and a self-contained docs page (no CDN, no external assets).

The page lists every endpoint, pre-fills request bodies with the entrypoint's input examples and
lets a person try calls from the browser (with an optional ``X-Racetrack-Auth`` token).
"""

import html
import json
from typing import Optional

from . import entrypoint as ep

AUTH_HEADER = "X-Racetrack-Auth"


def _json_body(schema: dict, example: Optional[dict]) -> dict:
    content = {"schema": schema}
    if example is not None:
        content["example"] = example
    return {"required": True, "content": {"application/json": content}}


_ERROR_RESPONSES = {
    "400": {"description": "Invalid input: bad JSON, missing or unexpected arguments, ValueError",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
    "500": {"description": "The entrypoint raised an exception",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
}


def openapi(entry: Optional[ep.Entrypoint], info: dict, base_path: str) -> dict:
    """Builds the OpenAPI document; ``base_path`` is the prefix the request came in with ("" at root)."""
    title = f"Fatman - {info.get('fatman_name') or 'unnamed'}"
    paths = {}
    if entry is not None:
        perform = ep.API_PREFIX + "/perform"
        paths[perform] = {"post": {
            "summary": "Call the fatman (perform)",
            "description": (entry.perform.__doc__ or "").strip(),
            "operationId": "perform",
            "tags": ["fatman"],
            "requestBody": _json_body(ep.body_schema(entry.perform), entry.examples.get(perform)),
            "responses": dict({"200": {"description": "Result of perform, as JSON",
                                       "content": {"application/json": {"schema": {}}}}}, **_ERROR_RESPONSES),
        }}
        paths[ep.API_PREFIX + "/parameters"] = {"get": {
            "summary": "Arguments of perform", "operationId": "parameters", "tags": ["fatman"],
            "responses": {"200": {"description": "[{name, type}] and [{name, default_value, type}]"}},
        }}
        for path, handler in sorted(entry.auxiliary.items()):
            op_id = "auxiliary_endpoint_" + path[len(ep.API_PREFIX) + 1:].replace("/", "_")
            paths[path] = {"post": {
                "summary": f"Auxiliary endpoint {path}",
                "description": (getattr(handler, "__doc__", None) or "").strip(),
                "operationId": op_id, "tags": ["auxiliary"],
                "requestBody": _json_body(ep.body_schema(handler), entry.examples.get(path)),
                "responses": dict({"200": {"description": "Result, as JSON",
                                           "content": {"application/json": {"schema": {}}}}}, **_ERROR_RESPONSES),
            }}
        for path, static in sorted(entry.static.items()):
            paths[path] = {"get": {
                "summary": f"Static file {static.path.name}",
                "operationId": "static_" + path[len(ep.API_PREFIX) + 1:].replace("/", "_").replace(".", "_"),
                "tags": ["static"],
                "responses": {"200": {"description": "File content", "content": {static.mimetype: {}}}},
            }}
    for path, summary in (("/health", "Health and versions"), ("/live", "Liveness"),
                          ("/ready", "Readiness"), ("/metrics", "Prometheus metrics")):
        paths[path] = {"get": {"summary": summary, "operationId": path.strip("/"), "tags": ["status"],
                               "security": [], "responses": {"200": {"description": "OK"}}}}
    servers = [{"url": base_path}] if base_path else []
    servers.append({"url": "/"})
    return {
        "openapi": "3.0.3",
        "info": {"title": title, "version": info.get("fatman_version") or "0.0.0",
                 "description": f"Fatman served by racetrack_fatman_wrapper (job type python3 "
                                f"{info.get('job_type_version') or ''})".strip()},
        "servers": servers,
        "paths": paths,
        "components": {
            "securitySchemes": {"RacetrackAuth": {"type": "apiKey", "in": "header", "name": AUTH_HEADER}},
            "schemas": {"Error": {"type": "object", "properties": {
                "error": {"type": "string"}, "type": {"type": "string"}}}},
        },
        "security": [{"RacetrackAuth": []}],
    }


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>__TITLE__</title>
<style>
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;background:#fafafa;color:#222}
header{background:#1b2a3a;color:#fff;padding:16px 24px}header h1{margin:0;font-size:22px}
header p{margin:4px 0 0;color:#b8c7d6;font-size:13px}main{max-width:960px;margin:0 auto;padding:16px}
.auth{margin:12px 0;font-size:14px}.auth input{width:60%;padding:4px}
.op{border:1px solid #ccd;border-radius:4px;margin:10px 0;background:#fff}
.op summary{padding:8px 12px;cursor:pointer;display:flex;gap:12px;align-items:center}
.m{font-weight:bold;color:#fff;border-radius:3px;padding:2px 8px;min-width:44px;text-align:center;font-size:13px}
.post .m{background:#49cc90}.get .m{background:#61affe}.p{font-family:monospace;font-size:15px}
.s{color:#555;font-size:13px}.body{padding:8px 12px;border-top:1px solid #eee}
textarea{width:100%;min-height:110px;font-family:monospace;font-size:13px;box-sizing:border-box}
button{margin:6px 0;padding:5px 14px;cursor:pointer}pre{background:#263238;color:#e0e0e0;padding:8px;
overflow:auto;max-height:320px;font-size:13px}a{color:#0b62a4}
</style></head><body>
<header><h1>__TITLE__</h1><p>__SUBTITLE__ &middot; <a style="color:#9cd" href="__BASE__/openapi.json">openapi.json</a></p></header>
<main>
<div class="auth">X-Racetrack-Auth token (needed through PUB): <input id="token" placeholder="optional"></div>
<div id="ops"></div>
</main>
<script id="spec" type="application/json">__SPEC__</script>
<script>
(function(){
var spec=JSON.parse(document.getElementById('spec').textContent);
var base=__BASE_JSON__;var ops=document.getElementById('ops');
function el(tag,cls,text){var e=document.createElement(tag);if(cls)e.className=cls;if(text!==undefined)e.textContent=text;return e;}
Object.keys(spec.paths).forEach(function(path){
 var item=spec.paths[path];
 Object.keys(item).forEach(function(method){
  var op=item[method];var d=el('details','op '+method);var s=el('summary');
  s.appendChild(el('span','m',method.toUpperCase()));s.appendChild(el('span','p',path));
  s.appendChild(el('span','s',op.summary||''));d.appendChild(s);
  var b=el('div','body');if(op.description)b.appendChild(el('p','s',op.description));
  var ta=null;
  if(op.requestBody){var c=op.requestBody.content['application/json'];ta=el('textarea');
   ta.value=JSON.stringify(c.example!==undefined?c.example:{},null,2);b.appendChild(ta);}
  var btn=el('button',null,'Try it out');var out=el('pre');out.style.display='none';
  btn.onclick=function(){
   var h={'Accept':'application/json, */*'};var t=document.getElementById('token').value;
   if(t)h['X-Racetrack-Auth']=t;var init={method:method.toUpperCase(),headers:h};
   if(ta){h['Content-Type']='application/json';init.body=ta.value;}
   out.style.display='block';out.textContent='...';
   fetch(base+path,init).then(function(r){return r.text().then(function(x){
    var body=x;try{body=JSON.stringify(JSON.parse(x),null,2);}catch(e){}
    out.textContent=r.status+' '+r.statusText+'\\n'+body;});
   }).catch(function(e){out.textContent='request failed: '+e;});
  };
  b.appendChild(btn);b.appendChild(out);d.appendChild(b);ops.appendChild(d);
 });
});
})();
</script></body></html>
"""


def page(spec: dict, base_path: str) -> str:
    title = spec["info"]["title"]
    subtitle = f"version {spec['info']['version']}"
    spec_json = json.dumps(spec).replace("</", "<\\/")
    return (_PAGE.replace("__TITLE__", html.escape(title))
            .replace("__SUBTITLE__", html.escape(subtitle))
            .replace("__BASE_JSON__", json.dumps(base_path).replace("</", "<\\/"))
            .replace("__BASE__", html.escape(base_path))
            .replace("__SPEC__", spec_json))
