"""Drive fakes' Session v2, Matchmaking v2 and fleet with the official AccelByte Python SDK.

The flow a studio's matchmaking runs, every call through accelbyte-py-sdk's own operations:
  1. the game server client creates a session template (DS), a rule set (1 vs 1, distance on
     mmr) and a match pool (session.admin_create_configuration_template_v1,
     match2.create_rule_set, match2.create_match_pool) and reads them back;
  2. two players log in (PKCE login_user) and open the SDK's lobby WebSocket client;
  3. both create match tickets (match2.create_match_ticket); each lobby receives
     OnMatchmakingStarted and OnMatchFound (messageNotif, base64 JSON payload);
  4. the ticket reports its match (match2.match_ticket_details, get_my_match_tickets);
  5. both join the game session (session.join_game_session) and read it until its
     DSInformation is AVAILABLE with a server (session.get_game_session), and
     OnDSStatusChanged arrived on the lobby;
  6. the leader leaves and the session is deleted (leave_game_session, delete_game_session);
  7. parties: player1 creates a party (public_create_party) and invites player2
     (public_party_invite), who hears OnPartyInvited and joins (public_party_join); the leader
     hears OnPartyMembersChanged; both read it (public_get_party, public_query_my_parties); the
     leader queues the party's ticket (create_match_ticket with sessionID = the party) and both
     hear OnMatchmakingStarted with the party; a member may not; the leader hands over
     (public_promote_party_leader) and leaves (public_party_leave), which cancels the ticket
     (OnMatchmakingTicketCanceled).
Every response model is checked with the SDK's own `is_valid()` (required fields, enums,
patterns, nested models), so a field fakes leaves out or misnames fails here.

Usage (versions this was checked with, see requirements.txt):
  AB_BASE_URL=http://127.0.0.1:8080 python v2_flow_check.py
Exit code 0 when every check passes.
"""

import asyncio
import base64
import json
import os
import sys
import time

import accelbyte_py_sdk
from accelbyte_py_sdk.api import match2, session
from accelbyte_py_sdk.api.match2.models import (
    ApiMatchFunctionOverride,
    ApiMatchPool,
    ApiMatchTicketRequest,
    ApiRuleSetPayload,
)
from accelbyte_py_sdk.api.session.models import (
    ApimodelsCreateConfigurationTemplateRequest,
    ApimodelsCreatePartyRequest,
    ApimodelsPromoteLeaderRequest,
    ApimodelsSessionInviteRequest,
)
from accelbyte_py_sdk.core import InMemoryTokenRepository, MyConfigRepository, WebsocketsWSClient
from accelbyte_py_sdk.services.auth import login_client, login_user

BASE = os.environ.get("AB_BASE_URL", "http://127.0.0.1:8080")
NAMESPACE = os.environ.get("AB_NAMESPACE", "matchbench")
GAME_ID = os.environ.get("AB_CLIENT_ID", "matchbench-game")
GAME_SECRET = os.environ.get("AB_CLIENT_SECRET", "matchbench-game-secret")
PLAYER_CLIENT = "matchbench-player"
USERS = [("player1", "Player1Pass!"), ("player2", "Player2Pass!")]
SUFFIX = str(int(time.time()))
TEMPLATE, RULES, POOL = f"duel-template-{SUFFIX}", f"duel-rules-{SUFFIX}", f"duel-{SUFFIX}"

failures = []


def check(name, ok, detail=""):
    print(f"[{'pass' if ok else 'FAIL'}] {name}{': ' + str(detail) if detail and not ok else ''}")
    if not ok:
        failures.append(name)


def valid(name, result, error):
    """The call succeeded and the SDK's own model accepts the response."""
    if error is not None:
        check(name, False, error)
        return False
    if result is not None and hasattr(result, "is_valid"):
        ok, why = result.is_valid()
        check(name, ok, why)
        return ok
    check(name, True)
    return True


def sdk_for(client_id, secret):
    sdk = accelbyte_py_sdk.AccelByteSDK()
    sdk.initialize(
        options={
            "config": MyConfigRepository(BASE, client_id, secret or "", NAMESPACE),
            "token": InMemoryTokenRepository(),
        }
    )
    return sdk


def events(messages):
    """(topic, payload) of every messageNotif received."""
    out = []
    for message in messages:
        lines = dict(line.split(": ", 1) for line in message.splitlines() if ": " in line)
        if lines.get("type") != "messageNotif":
            continue
        try:
            payload = json.loads(base64.b64decode(lines.get("payload", "")))
        except Exception:  # noqa: BLE001 - a free-form payload, not a service event
            payload = None
        out.append((lines.get("topic"), payload))
    return out


async def wait_topic(messages, topic, predicate=lambda p: True, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for seen, payload in events(messages):
            if seen == topic and payload is not None and predicate(payload):
                return payload
        await asyncio.sleep(0.05)
    return None


async def main():
    game = sdk_for(GAME_ID, GAME_SECRET)
    _, error = login_client(sdk=game)
    check("login_client (game server)", error is None, error)

    # 1. admin: template, rule set, pool
    template = ApimodelsCreateConfigurationTemplateRequest.create(
        client_version="1.0.0", deployment="default", inactive_timeout=60, invite_timeout=60,
        joinability="INVITE_ONLY", max_players=2, min_players=2, name=TEMPLATE, persistent=False,
        requested_regions=["us-east-1"], text_chat=False, type_="DS",
    )
    result, error = session.admin_create_configuration_template_v1(body=template, namespace=NAMESPACE, sdk=game)
    valid("session.admin_create_configuration_template_v1", result, error)
    result, error = session.admin_get_configuration_template_v1(name=TEMPLATE, namespace=NAMESPACE, sdk=game)
    valid("session.admin_get_configuration_template_v1", result, error)
    rules = {
        "alliance": {"min_number": 2, "max_number": 2, "player_min_number": 1, "player_max_number": 1},
        "matching_rule": [{"attribute": "mmr", "criteria": "distance", "reference": 100}],
    }
    _, error = match2.create_rule_set(
        body=ApiRuleSetPayload.create(data=rules, enable_custom_match_function=False, name=RULES),
        namespace=NAMESPACE, sdk=game,
    )
    check("match2.create_rule_set", error is None, error)
    result, error = match2.rule_set_details(ruleset=RULES, namespace=NAMESPACE, sdk=game)
    valid("match2.rule_set_details", result, error)
    pool = ApiMatchPool.create(
        auto_accept_backfill_proposal=False, backfill_proposal_expiration_seconds=0,
        backfill_ticket_expiration_seconds=0, match_function="default",
        match_function_override=ApiMatchFunctionOverride.create(), name=POOL, rule_set=RULES,
        session_template=TEMPLATE, ticket_expiration_seconds=60,
    )
    _, error = match2.create_match_pool(body=pool, namespace=NAMESPACE, sdk=game)
    check("match2.create_match_pool", error is None, error)
    result, error = match2.match_pool_details(pool=POOL, namespace=NAMESPACE, sdk=game)
    valid("match2.match_pool_details", result, error)

    # 2. players log in and open the lobby
    players = []
    for username, password in USERS:
        sdk = sdk_for(PLAYER_CLIENT, "")
        token, error = login_user(username, password, sdk=sdk)
        check(f"login_user {username}", error is None and token and token.access_token, error)
        received = []
        ws = WebsocketsWSClient(uri=BASE, username="", password="", access_token=token.access_token, uri_prefix="ws://")

        async def on_message(message, sink=received):
            sink.append(message)

        ws.listeners.append(on_message)
        await ws.connect()
        players.append((sdk, token, ws, received))

    # 3. tickets, started, found
    tickets = []
    for i, (sdk, token, _, received) in enumerate(players):
        body = ApiMatchTicketRequest.create(attributes={"mmr": 1000 + 10 * i}, latencies={"us-east-1": 30}, match_pool=POOL)
        queued_at = time.monotonic()
        result, error = match2.create_match_ticket(body=body, namespace=NAMESPACE, sdk=sdk)
        valid(f"match2.create_match_ticket player{i + 1}", result, error)
        tickets.append(result.match_ticket_id if result else None)
        started = await wait_topic(received, "OnMatchmakingStarted", lambda p, t=tickets[-1]: p.get("ticketID") == t)
        check(f"OnMatchmakingStarted player{i + 1}", started is not None, events(received))
    found = [await wait_topic(received, "OnMatchFound") for (_, _, _, received) in players]
    print(f"  OnMatchFound on both lobbies within {1000 * (time.monotonic() - queued_at):.0f} ms of the second ticket's create call")
    check("OnMatchFound on both lobbies", all(found), [events(p[3]) for p in players])
    session_id = found[0]["id"] if found[0] else None
    check("both players found the same session", session_id and found[1] and found[1]["id"] == session_id)

    # 4. ticket status
    p1_sdk = players[0][0]
    result, error = match2.match_ticket_details(ticketid=tickets[0], namespace=NAMESPACE, sdk=p1_sdk)
    valid("match2.match_ticket_details", result, error)
    check("ticket reports matchFound and the session", result and result.match_found and result.session_id == session_id, result)
    result, error = match2.get_my_match_tickets(namespace=NAMESPACE, sdk=p1_sdk)
    valid("match2.get_my_match_tickets", result, error)

    # 5. join, DSInformation AVAILABLE
    for i, (sdk, _, _, _) in enumerate(players):
        result, error = session.join_game_session(session_id=session_id, namespace=NAMESPACE, sdk=sdk)
        valid(f"session.join_game_session player{i + 1}", result, error)
    available = None
    joined_at = time.monotonic()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        result, error = session.get_game_session(session_id=session_id, namespace=NAMESPACE, sdk=p1_sdk)
        if error is not None:
            break
        if result.ds_information and result.ds_information.status_v2 == "AVAILABLE":
            available = result
            break
        await asyncio.sleep(0.1)
    valid("session.get_game_session", available, error)
    print(f"  DSInformation AVAILABLE {1000 * (time.monotonic() - joined_at):.0f} ms after the joins")
    server = available.ds_information.server if available else None
    check("DSInformation AVAILABLE with a server", server is not None and server.ip and server.port, available)
    changed = await wait_topic(
        players[1][3], "OnDSStatusChanged",
        lambda p: p.get("session", {}).get("DSInformation", {}).get("StatusV2") == "AVAILABLE",
    )
    check("OnDSStatusChanged AVAILABLE on the lobby", changed is not None, events(players[1][3]))
    result, error = session.public_query_my_game_sessions(namespace=NAMESPACE, sdk=p1_sdk)
    valid("session.public_query_my_game_sessions", result, error)

    # 6. leave, delete
    _, error = session.leave_game_session(session_id=session_id, namespace=NAMESPACE, sdk=players[1][0])
    check("session.leave_game_session", error is None, error)
    _, error = session.delete_game_session(session_id=session_id, namespace=NAMESPACE, sdk=game)
    check("session.delete_game_session", error is None, error)
    _, error = session.get_game_session(session_id=session_id, namespace=NAMESPACE, sdk=game)
    check("a deleted session answers an error", error is not None)

    # 7. parties
    (s1, t1, _, r1), (s2, t2, _, r2) = players
    body = ApimodelsCreatePartyRequest.create(
        attributes={}, configuration_name="", inactive_timeout=60, invite_timeout=60,
        joinability="INVITE_ONLY", max_players=2, members=[], min_players=1, text_chat=False,
        type_="NONE",
    )
    party, error = session.public_create_party(body=body, namespace=NAMESPACE, sdk=s1)
    valid("session.public_create_party", party, error)
    party_id = party.id_ if party else None
    invite = ApimodelsSessionInviteRequest.create(platform_id="", user_id=t2.user_id)
    result, error = session.public_party_invite(body=invite, party_id=party_id, namespace=NAMESPACE, sdk=s1)
    valid("session.public_party_invite", result, error)
    invited = await wait_topic(r2, "OnPartyInvited", lambda p: p.get("partyID") == party_id)
    check("OnPartyInvited on the invitee's lobby", invited is not None and invited.get("senderID") == t1.user_id, events(r2))
    # accelbyte-py-sdk 0.75.1 sends the join without a body (newer specs add an optional password).
    result, error = session.public_party_join(party_id=party_id, namespace=NAMESPACE, sdk=s2)
    valid("session.public_party_join", result, error)
    changed = await wait_topic(r1, "OnPartyMembersChanged", lambda p: p.get("joinerID") == t2.user_id)
    check("OnPartyMembersChanged on the leader's lobby", changed is not None, events(r1))
    result, error = session.public_get_party(party_id=party_id, namespace=NAMESPACE, sdk=s2)
    valid("session.public_get_party", result, error)
    check("both members joined", result and sorted(m.status_v2 for m in result.members) == ["JOINED", "JOINED"], result)
    result, error = session.public_query_my_parties(namespace=NAMESPACE, sdk=s2)
    valid("session.public_query_my_parties", result, error)
    party_ticket = ApiMatchTicketRequest.create(
        attributes={"mmr": 1000}, latencies={"us-east-1": 30}, match_pool=POOL, session_id=party_id
    )
    _, error = match2.create_match_ticket(body=party_ticket, namespace=NAMESPACE, sdk=s2)
    check("a member may not create the party's ticket", error is not None)
    result, error = match2.create_match_ticket(body=party_ticket, namespace=NAMESPACE, sdk=s1)
    valid("match2.create_match_ticket (party)", result, error)
    party_ticket_id = result.match_ticket_id if result else None
    for name, received in (("leader", r1), ("member", r2)):
        started = await wait_topic(
            received, "OnMatchmakingStarted",
            lambda p: p.get("ticketID") == party_ticket_id and p.get("partyID") == party_id,
        )
        check(f"OnMatchmakingStarted with the party on the {name}'s lobby", started is not None, events(received))
    leader = ApimodelsPromoteLeaderRequest.create(leader_id=t2.user_id)
    result, error = session.public_promote_party_leader(body=leader, party_id=party_id, namespace=NAMESPACE, sdk=s1)
    valid("session.public_promote_party_leader", result, error)
    check("the new leader leads", result and result.leader_id == t2.user_id, result)
    _, error = session.public_party_leave(party_id=party_id, namespace=NAMESPACE, sdk=s1)
    check("session.public_party_leave", error is None, error)
    cancelled = await wait_topic(r2, "OnMatchmakingTicketCanceled", lambda p: p.get("ticketID") == party_ticket_id)
    check("a member leaving cancels the party's ticket", cancelled is not None, events(r2))

    for _, _, ws, _ in players:
        await ws.disconnect()
    print(f"\n{len(failures)} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
