"""The labs' lesson code, copied from the notebooks' ``#| export`` cells by ``make export`` (never edited here).

Each ``labNN`` module holds what lab NN's notebook defines in the open (transforms, networks, training loops,
export and session calls), so a later lab that rebuilds lab NN's artifact runs the very code the lesson shows.
This layer imports only the libraries and ``workshop_utils.core``: the domain packages build on it.
"""
