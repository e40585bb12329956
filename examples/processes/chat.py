"""A chat room on process groups: every member of the group 'room' gets what
anyone says; members on a node that goes down leave the room with it."""
import time

from hornbeam_erlang import join, members, node, publish, receive, self, send


def member(name, report):
    """A chat member: joins the room, tells report what it hears."""
    join("room")
    send(report, ("joined", name, self()))
    while True:
        msg = receive()
        if msg == "leave":
            return
        send(report, ("heard", name, msg))


def say(who, text):
    return publish("room", (who, text))
