"""Authentication, TLS and authorisation of the switch on Kafka (issue 12).

- `pki`: the certificate authority and the broker's certificate (with `cryptography`).
- `users`: principals and their SCRAM credentials, stored under the security folder (0600).
- `adminapi`: the two Kafka admin requests aiokafka lacks (CreateAcls v2+,
  AlterUserScramCredentials), sent through aiokafka's own client.
- `acls`: which principal may do what (pure), and applying it to a broker.
- `agencies`: `switch agency add`: user, topics, ACLs and the ORI binding.
"""
