"""A Flask app for the web tests."""
from flask import Flask, request

app = Flask(__name__)


@app.post("/upload")
def upload():
    return str(len(request.get_data()))
