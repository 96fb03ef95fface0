"""The correlator: rejoin each transaction's leg answers into one reply, with deadlines."""
