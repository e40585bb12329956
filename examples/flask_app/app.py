"""A Flask app served by hornbeam: `bin/hornbeam start app:app --pythonpath examples/flask_app`."""
from flask import Flask, jsonify, request

from hornbeam_erlang import node, state_incr

app = Flask(__name__)


@app.get("/")
def index():
    return jsonify(node=node(), hits=state_incr("flask:hits"))


@app.post("/echo")
def echo():
    return jsonify(got=request.get_json(), args=request.args.to_dict())


@app.get("/user/<name>")
def user(name):
    return f"hello {name}"
