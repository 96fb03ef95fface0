"""`switch agency add NAME [--ori-list ORI,...]`: an agency principal, its topics and ACLs."""

from __future__ import annotations

import argparse
import sys

from switch.cli.common import run_async, settings_from_args

HELP = """\
Create (or update) an agency on the secured broker: a SCRAM-SHA-512 user agency-NAME with
a random password, its own request topic <prefix>.agency.NAME.requests (only it may write)
and reply topic <prefix>.agency.NAME.replies (only it may read), its ACLs, and the ORIs it
may send requests for (the router refuses any other ORI with NOT_AUTHORIZED). Run it again
to change the ORI list; --new-password rotates the password (the old one stops working at
once). The credentials are stored in <home>/security/users/agency-NAME.json (0600) and
printed; `switch submit --agency NAME` and `switch console --agency NAME` use them.
Runs as the `admin` principal.
"""


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("agency", parents=[common], help="add an agency (principal, topics, ACLs)",
                       description=HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("action", choices=("add",))
    p.add_argument("name", help="the agency's name (letters, digits, '_', '-'), e.g. IL0160000")
    p.add_argument("--ori-list", metavar="ORI[,ORI...]",
                   help="the ORIs it may send for (default: NAME, when NAME is an ORI)")
    p.add_argument("--new-password", action="store_true",
                   help="set a new random password even if one is stored (rotation)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from switch.security.agencies import add_agency, parse_ori_list
    from switch.security.users import check_agency_name

    settings = settings_from_args(args)
    name = check_agency_name(args.name)
    oris = parse_ori_list(args.ori_list, name)
    creds, binding = run_async(add_agency(settings, name, oris, new_password=args.new_password))
    print(f"agency {name}: user {creds.username}, ORIs {', '.join(binding.oris)}")
    print(f"  writes {binding.requests}; reads {binding.replies}")
    print(f"  KAFKA_SASL_USERNAME={creds.username}")
    print(f"  KAFKA_SASL_PASSWORD={creds.password}")
    print(f"  KAFKA_SSL_CAFILE={settings.kafka.ssl_cafile}")
    print(f"switch agency: credentials stored in {settings.kafka.security_dir}/users/"
          f"{creds.username}.json", file=sys.stderr)
    return 0
