<?php

namespace App\Controller;

use App\Kernel;
use App\Notes;
use Symfony\Bundle\FrameworkBundle\Controller\AbstractController;
use Symfony\Component\HttpFoundation\Request;
use Symfony\Component\HttpFoundation\Response;

final class NotesController extends AbstractController
{
    private Kernel $kernel;
    private Notes $notes;

    public function __construct(Kernel $kernel, Notes $notes)
    {
        $this->kernel = $kernel;
        $this->notes = $notes;
    }

    /** The notes, this instance's boot id and request count, and the session's visit counter. */
    public function home(Request $request): Response
    {
        $session = $request->getSession();
        $visits = $session->get('visits', 0) + 1;
        $session->set('visits', $visits);
        return $this->render('home.html.twig', [
            'boot_id' => $this->kernel->bootId(),
            'served' => $this->kernel->served(),
            'visits' => $visits,
            'notes' => $this->notes->all(),
            'now' => new \DateTimeImmutable(),
        ]);
    }

    /** Stores a posted note, then redirects to the list (post/redirect/get). */
    public function add(Request $request): Response
    {
        $body = trim((string) $request->request->get('body', ''));
        if ($body === '') {
            return new Response("A note needs a body.\n", 422, ['Content-Type' => 'text/plain']);
        }
        $id = $this->notes->add($body);
        $this->addFlash('saved', "Saved note #$id.");
        return $this->redirectToRoute('home');
    }

    public function hello(string $name): Response
    {
        return $this->render('hello.html.twig', ['name' => $name]);
    }
}
