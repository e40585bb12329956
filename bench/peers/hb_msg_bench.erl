%% Driver for the Erlang message-passing figures: `!` between two processes
%% on two nodes and within one node. Writes one JSON object to a file.
%%
%% Started by erlang_msg.sh as
%%   erl ... -run hb_msg_bench main PeerNode OutFile RoundTrips OneWay
-module(hb_msg_bench).
-export([main/1, echo/0, counter/2]).

-define(MSG, {ping, 42, <<"hello, peer">>}).
-define(PEER_WAIT_MS, 10000).
-define(WATCHDOG_MS, 55000).

main([PeerS, OutFile, RtS, OwS]) ->
    spawn(fun() -> timer:sleep(?WATCHDOG_MS), halt(3) end),
    try
        run(list_to_atom(PeerS), OutFile, list_to_integer(RtS), list_to_integer(OwS)),
        halt(0)
    catch
        C:R:St ->
            io:format(standard_error, "hb_msg_bench failed: ~p:~p~n~p~n", [C, R, St]),
            halt(1)
    end.

echo() ->
    receive
        {From, M} -> From ! M, echo();
        stop -> ok
    end.

%% counts N messages, then tells Report.
counter(Report, N) -> count(Report, N).
count(Report, 0) -> Report ! counted;
count(Report, N) -> receive _ -> count(Report, N - 1) end.

wait_peer(Peer, Deadline) ->
    case net_adm:ping(Peer) of
        pong -> ok;
        pang ->
            erlang:monotonic_time(millisecond) < Deadline orelse error(peer_not_up),
            timer:sleep(50),
            wait_peer(Peer, Deadline)
    end.

run(Peer, OutFile, Rt, Ow) ->
    wait_peer(Peer, erlang:monotonic_time(millisecond) + ?PEER_WAIT_MS),
    {module, hb_msg_bench} = erpc:call(Peer, code, ensure_loaded, [hb_msg_bench]),
    Remote = spawn(Peer, hb_msg_bench, echo, []),
    Local = spawn(hb_msg_bench, echo, []),
    {R50, R99} = roundtrip(Remote, Rt),
    {L50, L99} = roundtrip(Local, Rt),
    RRate = oneway(Peer, Ow),
    LRate = oneway(node(), Ow),
    Fields = [
        {remote_rtt_p50_us, num(R50)}, {remote_rtt_p99_us, num(R99)},
        {local_rtt_p50_us, num(L50)}, {local_rtt_p99_us, num(L99)},
        {remote_oneway_per_s, num(RRate)}, {local_oneway_per_s, num(LRate)},
        {otp_release, [$", erlang:system_info(otp_release), $"]}
    ],
    Json = ["{", lists:join(",", [[$", atom_to_list(K), "\":", V] || {K, V} <- Fields]), "}\n"],
    ok = file:write_file(OutFile, Json).

roundtrip(Echo, N) ->
    [begin Echo ! {self(), ?MSG}, receive ?MSG -> ok end end || _ <- lists:seq(1, 2000)],
    Ts = [begin
              T0 = erlang:monotonic_time(nanosecond),
              Echo ! {self(), ?MSG},
              receive ?MSG -> ok end,
              erlang:monotonic_time(nanosecond) - T0
          end || _ <- lists:seq(1, N)],
    S = lists:sort(Ts),
    {lists:nth(N div 2, S) / 1000, lists:nth(N * 99 div 100, S) / 1000}.

oneway(Node, N) ->
    C = spawn(Node, hb_msg_bench, counter, [self(), N]),
    T0 = erlang:monotonic_time(nanosecond),
    [C ! ?MSG || _ <- lists:seq(1, N)],
    receive counted -> ok end,
    N / ((erlang:monotonic_time(nanosecond) - T0) / 1.0e9).

num(F) when is_float(F) -> float_to_list(F, [{decimals, 2}]);
num(I) -> integer_to_list(I).
