%% The function the benchmark calls on the remote node: it returns its
%% argument, so a call's cost is the distribution round trip and nothing else.
-module(hb_echo).
-export([echo/1]).

echo(X) -> X.
