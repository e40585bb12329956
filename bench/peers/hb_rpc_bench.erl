%% Driver for the Erlang peer figures: run on one node, it calls hb_echo:echo/1
%% on another node with rpc:call and erpc:call, and writes one JSON object to
%% a file (not stdout: the VM and logger may also write there).
%%
%% Started by erlang_rpc.sh as
%%   erl ... -run hb_rpc_bench main PeerNode OutFile Calls Seconds
-module(hb_rpc_bench).
-export([main/1]).

%% Small, but not an immediate: a tuple with an integer and a short binary,
%% like a typical small request.
-define(ARG, {ping, 42, <<"hello, peer">>}).
-define(WARMUP_CALLS, 2000).
-define(WARMUP_MS, 500).
-define(PEER_WAIT_MS, 10000).
%% Past this the driver halts itself, so a wedged run never outlives its script.
-define(WATCHDOG_MS, 55000).

main([PeerS, OutFile, CallsS, SecsS]) ->
    spawn(fun() -> timer:sleep(?WATCHDOG_MS), err("watchdog: gave up after ~p ms", [?WATCHDOG_MS]), halt(3) end),
    try
        run(list_to_atom(PeerS), OutFile, list_to_integer(CallsS), list_to_integer(SecsS)),
        halt(0)
    catch
        C:R:St ->
            err("failed: ~p:~p~n~p", [C, R, St]),
            halt(1)
    end.

run(Peer, OutFile, Calls, Secs) ->
    wait_peer(Peer, erlang:monotonic_time(millisecond) + ?PEER_WAIT_MS),
    %% Load the echo module there now, so no call below pays for code loading.
    {module, hb_echo} = erpc:call(Peer, code, ensure_loaded, [hb_echo]),
    Rpc = fun() -> ?ARG = rpc:call(Peer, hb_echo, echo, [?ARG]) end,
    Erpc = fun() -> ?ARG = erpc:call(Peer, hb_echo, echo, [?ARG]) end,

    {RpcP50, RpcP99} = latency(Rpc, Calls),
    {ErpcP50, ErpcP99} = latency(Erpc, Calls),
    Rpc32 = throughput(Rpc, 32, Secs),
    Rpc64 = throughput(Rpc, 64, Secs),
    Erpc32 = throughput(Erpc, 32, Secs),
    Erpc64 = throughput(Erpc, 64, Secs),

    Fields = [
        {rpc_call_p50_us, num(RpcP50)},
        {rpc_call_p99_us, num(RpcP99)},
        {erpc_call_p50_us, num(ErpcP50)},
        {erpc_call_p99_us, num(ErpcP99)},
        {rpc_32_callers_per_s, num(Rpc32)},
        {rpc_64_callers_per_s, num(Rpc64)},
        {erpc_32_callers_per_s, num(Erpc32)},
        {erpc_64_callers_per_s, num(Erpc64)},
        {latency_calls, integer_to_list(Calls)},
        {throughput_seconds, integer_to_list(Secs)},
        {schedulers, integer_to_list(erlang:system_info(schedulers_online))},
        {otp_release, str(erlang:system_info(otp_release))},
        {erts_version, str(erlang:system_info(version))}
    ],
    Json = ["{", lists:join(",", [[$", atom_to_list(K), "\":", V] || {K, V} <- Fields]), "}\n"],
    ok = file:write_file(OutFile, Json).

%% net_adm:ping both connects and checks the cookie; the peer may still be
%% booting, so retry until the deadline and then fail with a clear message.
wait_peer(Peer, Deadline) ->
    case net_adm:ping(Peer) of
        pong ->
            ok;
        pang ->
            case erlang:monotonic_time(millisecond) >= Deadline of
                true -> error({peer_not_reachable, Peer, ?PEER_WAIT_MS});
                false -> timer:sleep(50), wait_peer(Peer, Deadline)
            end
    end.

%% Sequential calls from one process; returns {p50, p99} in microseconds.
latency(F, N) ->
    loop(F, ?WARMUP_CALLS),
    Ds = lists:sort(timed(F, N, [])),
    {pct(Ds, N, 0.50), pct(Ds, N, 0.99)}.

loop(_, 0) -> ok;
loop(F, N) -> F(), loop(F, N - 1).

timed(_, 0, Acc) ->
    Acc;
timed(F, N, Acc) ->
    T0 = erlang:monotonic_time(),
    F(),
    T1 = erlang:monotonic_time(),
    timed(F, N - 1, [T1 - T0 | Acc]).

%% Nearest-rank percentile of a sorted list of native-unit durations, in us.
pct(Sorted, N, P) ->
    Rank = max(1, min(N, ceil(P * N))),
    erlang:convert_time_unit(lists:nth(Rank, Sorted), native, nanosecond) / 1000.

%% K processes call in a closed loop for Secs seconds; returns calls/s.
%% A short untimed round first, so connection buffers and schedulers settle.
throughput(F, K, Secs) ->
    _ = burst(F, K, ?WARMUP_MS),
    {Count, ElapsedUs} = burst(F, K, Secs * 1000),
    Count * 1.0e6 / ElapsedUs.

burst(F, K, Ms) ->
    Parent = self(),
    Ref = make_ref(),
    Pids = [spawn_link(fun() -> caller(F, Parent, Ref) end) || _ <- lists:seq(1, K)],
    T0 = erlang:monotonic_time(),
    Deadline = erlang:convert_time_unit(T0, native, millisecond) + Ms,
    [P ! {go, Deadline} || P <- Pids],
    Count = lists:sum([receive {Ref, N} -> N after Ms + 10000 -> error(caller_timeout) end || _ <- Pids]),
    T1 = erlang:monotonic_time(),
    %% Elapsed runs to the last caller's last reply, so in-flight calls that
    %% finish after the deadline are both counted and timed.
    {Count, erlang:convert_time_unit(T1 - T0, native, microsecond)}.

caller(F, Parent, Ref) ->
    receive {go, Deadline} -> Parent ! {Ref, calls(F, Deadline, 0)} end.

calls(F, Deadline, N) ->
    case erlang:monotonic_time(millisecond) >= Deadline of
        true -> N;
        false -> F(), calls(F, Deadline, N + 1)
    end.

num(X) when is_integer(X) -> integer_to_list(X);
num(X) -> float_to_list(X, [{decimals, 1}, compact]).

str(S) -> [$", S, $"].

err(Fmt, Args) -> io:format(standard_error, "hb_rpc_bench: " ++ Fmt ++ "~n", Args).
