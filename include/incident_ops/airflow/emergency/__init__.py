"""Emergency response (101): the steps, the questions to people (HITL operators), chasing."""
