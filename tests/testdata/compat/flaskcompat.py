"""A Flask app walked through its usual flows by the compat test, under
hornbeam and under gunicorn, so that every answer can be compared."""

import hashlib
import os

from flask import (Flask, Response, abort, jsonify, redirect, request, send_file,
                   session, stream_with_context, url_for)

app = Flask(__name__)
app.secret_key = "compat-secret"
DATA = os.path.join(os.environ["COMPAT_DIR"], "data.bin")


@app.route("/login", methods=["GET", "POST"])
def login():
    if request.method == "POST":
        if request.form.get("password") != "pw":
            return redirect(url_for("login", error="bad"))
        session["user"] = request.form["user"]
        return redirect(url_for("me"))
    return f'<form method="post" action="{url_for("login")}">{request.args.get("error", "")}</form>'


@app.route("/me")
def me():
    if "user" not in session:
        return redirect(url_for("login", next=request.path))
    return jsonify(user=session["user"])


@app.route("/logout", methods=["POST"])
def logout():
    session.clear()
    return redirect(url_for("login"))


@app.route("/form", methods=["POST"])
def form():
    return jsonify(form=request.form.to_dict(flat=False), args=request.args.to_dict(flat=False),
                   content_type=request.content_type, length=request.content_length)


@app.route("/upload", methods=["POST"])
def upload():
    files = {k: {"filename": f.filename, "mimetype": f.mimetype,
                 "sha256": hashlib.sha256(f.read()).hexdigest()}
             for k, f in request.files.items()}
    return jsonify(files=files, form=request.form.to_dict())


@app.route("/raw", methods=["POST", "PUT"])
def raw():
    data = request.get_data()
    return jsonify(n=len(data), sha256=hashlib.sha256(data).hexdigest(),
                   length=request.content_length,
                   chunked=request.headers.get("Transfer-Encoding"))


@app.route("/api/items/<int:item_id>", methods=["GET", "DELETE"])
def item(item_id):
    if item_id > 100:
        abort(404)
    if request.method == "DELETE":
        return "", 204
    return jsonify(id=item_id, name=f"item {item_id}")


@app.route("/api/items", methods=["POST"])
def create():
    data = request.get_json()  # 400 on a broken body
    if not isinstance(data, dict) or "name" not in data:
        return jsonify(error="name required"), 422
    return jsonify(created=data), 201, {"Location": url_for("item", item_id=7)}


@app.route("/file")
def file():
    return send_file(DATA, mimetype="application/octet-stream")


@app.route("/download")
def download():
    return send_file(DATA, as_attachment=True, download_name="résumé data.bin")


@app.route("/stream")
def stream():
    n = request.args.get("n", 5, type=int)

    @stream_with_context
    def gen():
        for i in range(n):
            yield f"line {i} {request.args.get('tag', '')}\n"

    return Response(gen(), mimetype="text/plain")


@app.route("/stream-fail")
def stream_fail():
    def gen():
        yield "first\n"
        yield "second\n"
        raise RuntimeError("the data source failed")

    return Response(gen(), mimetype="text/plain")


@app.route("/echo/<path:p>")
def echo(p):
    return jsonify(p=p, path=request.path, full_path=request.full_path, script_root=request.script_root,
                   url=request.url, base_url=request.base_url, url_root=request.url_root,
                   args=request.args.to_dict(flat=False),
                   url_for=url_for("echo", p=p, q="ä b", _external=True),
                   remote_addr=request.remote_addr, scheme=request.scheme, host=request.host,
                   server=request.environ.get("SERVER_NAME"), port=request.environ.get("SERVER_PORT"),
                   protocol=request.environ.get("SERVER_PROTOCOL"))


@app.route("/headers")
def headers():
    return jsonify(sorted((k, v) for k, v in request.headers.items()))


@app.route("/cookie/set")
def cookie_set():
    r = jsonify(ok=True)
    r.set_cookie("theme", "dark", max_age=3600, path="/", httponly=True, samesite="Lax")
    r.set_cookie("lang", "fr")
    return r


@app.route("/cookie/get")
def cookie_get():
    return jsonify(sorted(request.cookies.items()))


@app.route("/cookie/del")
def cookie_del():
    r = jsonify(ok=True)
    r.delete_cookie("theme")
    return r


@app.route("/latin1-header")
def latin1_header():
    # PEP 3333: header values are str of latin-1 code points, sent as those bytes.
    return "ok", 200, {"X-Name": "caf\u00e9", "Content-Disposition": "inline; filename=\"r\u00e9sum\u00e9.txt\""}


@app.route("/utf8-header")
def utf8_header():
    # Not latin-1, which PEP 3333 asks for.
    return "ok", 200, {"X-Mark": "\u2713"}


@app.route("/boom")
def boom():
    raise RuntimeError("boom")
