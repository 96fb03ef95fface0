"""Scenario files: steps that send requests and say what must come back (`switch scenario`).

`model` (the file format), `expect` (checking a reply), `template` (variables), `runner`
(talking to a switch), `report` (tickets and JUnit XML). All but `runner` are pure.
"""
