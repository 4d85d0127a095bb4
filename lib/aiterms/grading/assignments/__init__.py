"""The graded tasks of each assignment: module ``exNN_topic`` for assignment ``NN-topic`` (its ``TASKS``)."""
